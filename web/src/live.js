// The live event stream: one WebSocket to /api/v1/events, authenticated with the first frame
// (a browser cannot set headers on a WebSocket), reconnecting after a drop with the last cursor
// so nothing is missed and nothing comes twice.

const MAX_BACKOFF_MS = 10000;

export class Live {
  /**
   * @param {() => string|null} getToken
   * @param {(event: any) => void} onEvent
   * @param {(state: 'connecting'|'online'|'offline') => void} onState
   */
  constructor(getToken, onEvent, onState) {
    this.getToken = getToken;
    this.onEvent = onEvent;
    this.onState = onState;
    /** @type {string|null} the last cursor received */
    this.cursor = null;
    /** @type {WebSocket|null} */
    this.ws = null;
    this.stopped = false;
    this.attempt = 0;
    /** @type {any} */
    this.timer = null;
    /** @type {any} */
    this.ackTimer = null;
    this.online = () => this.reconnectNow();
    this.offline = () => this.drop();
    window.addEventListener('online', this.online);
    window.addEventListener('offline', this.offline);
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    window.removeEventListener('online', this.online);
    window.removeEventListener('offline', this.offline);
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }

  connect() {
    if (this.stopped) return;
    this.onState('connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const since = this.cursor ? `?since=${encodeURIComponent(this.cursor)}` : '';
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/events${since}`);
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'auth', token: this.getToken() }));
      this.attempt = 0;
      this.onState('online');
    };
    ws.onmessage = (m) => {
      let ev;
      try {
        ev = JSON.parse(String(m.data));
      } catch {
        return;
      }
      if (ev && ev.cursor) this.cursor = ev.cursor;
      this.onEvent(ev);
      this.scheduleAck();
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onState('offline');
      this.retryLater();
    };
  }

  /** Acknowledges the last cursor shortly after a burst of events. */
  scheduleAck() {
    if (this.ackTimer) return;
    this.ackTimer = setTimeout(() => {
      this.ackTimer = null;
      if (this.ws && this.ws.readyState === WebSocket.OPEN && this.cursor) {
        this.ws.send(JSON.stringify({ type: 'ack', cursor: this.cursor }));
      }
    }, 200);
  }

  retryLater() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const wait = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.attempt) * (0.75 + Math.random() / 2);
    this.attempt += 1;
    this.timer = setTimeout(() => this.connect(), wait);
  }

  /** The network went away: close now rather than wait for a timeout. */
  drop() {
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    this.onState('offline');
    this.retryLater();
  }

  /** The network is back: reconnect at once with the last cursor. */
  reconnectNow() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.attempt = 0;
    if (!this.ws) this.connect();
  }
}
