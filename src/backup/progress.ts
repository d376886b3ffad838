/**
 * The figures a backup's progress shows: what the scan found so far (totals)
 * against what the file stage has done, and the bytes it actually read (less
 * than the total in an incremental, which keeps unchanged files unread).
 */
import type { ProgressReporter } from '../progress/reporter.js';

export class FileProgress {
  private totalFiles = 0;
  private totalBytes = 0;
  private doneFiles = 0;
  private doneBytes = 0;
  private read = 0;
  private scanning = true;

  constructor(private readonly reporter: ProgressReporter) {}

  /** Content bytes read from the STORAGE_ROOT and the database copies. */
  get bytesRead(): number {
    return this.read;
  }

  /** The scan found a regular file of `size` bytes. */
  found(size: number): void {
    this.totalFiles++;
    this.totalBytes += size;
  }

  /** The scan is over: the totals are final from now on. */
  scanDone(): void {
    this.scanning = false;
  }

  /** A file is done without being read (kept from the parent backup): all its bytes count as done. */
  kept(path: string, size: number): void {
    this.doneFiles++;
    this.doneBytes += size;
    this.show(path);
  }

  /** A file that was read is done (its bytes were counted as they were read). */
  stored(): void {
    this.doneFiles++;
  }

  /** What a store reports as it reads `path`'s bytes. */
  reading(path: string): (n: number) => void {
    return (n) => {
      this.doneBytes += n;
      this.read += n;
      this.show(path);
    };
  }

  private show(path: string): void {
    this.reporter.progress({
      files: this.doneFiles,
      bytes: this.doneBytes,
      totalFiles: this.totalFiles,
      totalBytes: this.totalBytes,
      totalsFinal: !this.scanning,
      current: path,
    });
  }
}
