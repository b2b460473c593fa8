// The node's documented client API (api/src/openapi.json), and nothing else. The token
// lives in this module's memory; it is written to localStorage only when the person asked to
// stay signed in.

const KEEP_KEY = 'shanliao.session';

/** An error answer of the API: HTTP status plus the `{"error":{"code","message"}}` code. */
export class ApiError extends Error {
  /** @param {number} status @param {string} code @param {string} message */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
    /** Seconds the node asked to wait before trying again (its Retry-After), 0 if none. */
    this.retryAfter = 0;
  }
}

/** The request never reached the node (offline, connection dropped). */
export class NetworkError extends Error {}

/** @type {string|null} */
let token = null;

/** Restores a kept session, if the person chose to stay signed in. */
export function restoreToken() {
  token = localStorage.getItem(KEEP_KEY);
  return token;
}

/** @param {string|null} value @param {boolean} keep */
export function setToken(value, keep) {
  token = value;
  if (value && keep) localStorage.setItem(KEEP_KEY, value);
  else localStorage.removeItem(KEEP_KEY);
}

export function currentToken() {
  return token;
}

/**
 * Calls the API. JSON in and out; 204 gives null.
 * @param {string} method
 * @param {string} path
 * @param {any} [body]
 * @returns {Promise<any>}
 */
export async function call(method, path, body) {
  /** @type {Record<string,string>} */
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch (e) {
    throw new NetworkError(String(e));
  }
  return answer(r);
}

/** @param {Response} r */
async function answer(r) {
  if (r.status === 204) return null;
  const text = await r.text();
  let value;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = null;
  }
  if (!r.ok) {
    const err = value && value.error ? value.error : { code: 'http_' + r.status, message: text };
    throw new ApiError(r.status, err.code, err.message);
  }
  return { status: r.status, ...(value || {}) };
}

/**
 * Uploads a file with progress (fetch has no upload progress; XMLHttpRequest does).
 * @param {Blob} file
 * @param {(fraction: number) => void} onProgress
 * @returns {Promise<{media_id: string, size: number, content_type: string}>}
 */
export function upload(file, onProgress) {
  return new Promise((resolve, reject) => {
    const x = new XMLHttpRequest();
    x.open('POST', '/api/v1/media');
    if (token) x.setRequestHeader('authorization', `Bearer ${token}`);
    x.setRequestHeader('content-type', file.type || 'application/octet-stream');
    x.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    x.onerror = () => reject(new NetworkError('upload failed'));
    x.onload = () => {
      let v;
      try {
        v = JSON.parse(x.responseText);
      } catch {
        v = null;
      }
      if (x.status >= 200 && x.status < 300 && v) resolve(v);
      else {
        const e = v && v.error ? v.error : { code: 'http_' + x.status, message: '' };
        reject(new ApiError(x.status, e.code, e.message));
      }
    };
    x.send(file);
  });
}

/** Downloads a media file as a blob URL (an <img> cannot send the bearer token). */
export function mediaUrl(id) {
  return blobUrl(`/api/v1/media/${encodeURIComponent(id)}`);
}

/**
 * Downloads media a community post shows, as a blob URL: this node's, or through the host
 * of a community of another node.
 */
export function postMediaUrl(community, post, id) {
  return blobUrl(`/api/v1/communities/${community}/posts/${post}/media/${encodeURIComponent(id)}`);
}

async function blobUrl(path) {
  const r = await fetch(path, {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (!r.ok) {
    // The node's error code matters here: `media_arriving` (503) means "ask again later".
    let code = 'media_' + r.status;
    let message = '';
    try {
      const v = await r.json();
      if (v && v.error && typeof v.error.code === 'string') {
        code = v.error.code;
        message = String(v.error.message || '');
      }
    } catch {
      // Not JSON: keep the status-derived code.
    }
    const e = new ApiError(r.status, code, message);
    e.retryAfter = Number(r.headers.get('retry-after')) || 0;
    throw e;
  }
  return URL.createObjectURL(await r.blob());
}

/** Downloads the data export and hands it to the browser as a file. */
export async function downloadExport() {
  const r = await fetch('/api/v1/me/export', {
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  if (!r.ok) {
    let code = 'http_' + r.status;
    try {
      code = (await r.json()).error.code;
    } catch {
      /* keep the status code */
    }
    throw new ApiError(r.status, code, '');
  }
  return r.blob();
}
