/** Collects the lines an in-process ztunnel logs and lets a test wait for the next one that matches. */
export class LogTap {
  readonly lines: string[] = [];
  private waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];

  /** Give this as the Logger's `write`. */
  readonly write = (line: string): void => {
    this.lines.push(line);
    for (const w of [...this.waiters]) {
      if (w.match(line)) {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };

  /** Resolves with the next line logged after this call that matches. */
  next(match: (line: string) => boolean): Promise<string> {
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }
}
