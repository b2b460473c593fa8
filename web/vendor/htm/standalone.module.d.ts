// Types for htm's preact/standalone.module.js (written for this project, not vendored: the
// package ships none for this file). Loose on purpose: the client type-checks its own code.
export type VNode = any;
export declare function h(type: any, props?: any, ...children: any[]): VNode;
export declare const html: (strings: TemplateStringsArray, ...values: any[]) => VNode;
export declare function render(tree: VNode, parent: Element): void;
export declare class Component<P = any, S = any> {
  constructor(props?: P, context?: any);
  props: P;
  state: S;
  setState(s: Partial<S>): void;
}
export declare function createContext<T>(value: T): any;
export declare function useState<T>(initial: T | (() => T)): [T, (v: T | ((prev: T) => T)) => void];
export declare function useReducer<S, A>(reducer: (s: S, a: A) => S, initial: S): [S, (a: A) => void];
export declare function useEffect(fn: () => void | (() => void), deps?: readonly any[]): void;
export declare function useLayoutEffect(fn: () => void | (() => void), deps?: readonly any[]): void;
export declare function useRef<T>(initial: T): { current: T };
export declare function useImperativeHandle(ref: any, create: () => any, deps?: readonly any[]): void;
export declare function useMemo<T>(fn: () => T, deps: readonly any[]): T;
export declare function useCallback<T extends (...a: any[]) => any>(fn: T, deps: readonly any[]): T;
export declare function useContext<T>(ctx: any): T;
export declare function useDebugValue(v: any): void;
export declare function useErrorBoundary(cb?: (e: any) => void): [any, () => void];
