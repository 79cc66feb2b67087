/** What every page of the app is: it renders into `root` and returns how to stop its live updates. */
export type Cleanup = () => void;

/** A page: given its container and route parameters, it renders and returns its cleanup. */
export type View = (root: HTMLElement, params: URLSearchParams, id?: string) => Cleanup;

/**
 * Reads a live subscription in the background until `cleanup` is called. Leaving early ends it on
 * the server at once (the SDK's `return()`), so navigating away never leaks subscriptions.
 */
export function follow<T>(subscription: AsyncIterableIterator<T>, onValue: (value: T) => void, onError: (error: unknown) => void): Cleanup {
  let stopped = false;
  void (async () => {
    try {
      for await (const value of subscription) {
        if (stopped) break;
        onValue(value);
      }
    } catch (error) {
      if (!stopped) onError(error);
    }
  })();
  return () => {
    stopped = true;
    void subscription.return?.();
  };
}
