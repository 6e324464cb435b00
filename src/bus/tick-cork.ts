// Holds a stream's writes for the rest of the current tick, so that everything written in
// one tick leaves in one syscall (writev) instead of one each.
export interface Corkable {
  cork(): void;
  uncork(): void;
}

export class TickCork {
  private held = false;

  constructor(private readonly stream: Corkable) {}

  /** Call before a write; the first call in a tick corks, the tick's end uncorks. */
  hold(): void {
    if (this.held) return;
    this.held = true;
    this.stream.cork();
    process.nextTick(() => {
      this.held = false;
      this.stream.uncork();
    });
  }
}
