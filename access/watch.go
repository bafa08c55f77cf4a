package access

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchSettle is how long Watch waits after the last change in the access
// file's directory before it reloads, so that a file written in several
// steps is read once, whole.
const watchSettle = 100 * time.Millisecond

// Watch reloads the access file on every change in its directory, until
// ctx is done: writes to the file, and the atomic replaces that editors
// (write a temporary file, rename it over the original) and Kubernetes
// ConfigMap and Secret volumes (swap the ..data symlink) make, which change
// the directory rather than the file. Changes are reloaded once they settle
// for 100 ms; Reload skips a file whose bytes did not change.
//
// Watch returns once the watch is in place, so a change made after it
// returns is seen; the returned channel is closed when watching stops.
func (a *Authenticator) Watch(ctx context.Context) (<-chan struct{}, error) {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watching the access file: %w", err)
	}
	dir := filepath.Dir(a.opts.Path)
	if err := w.Add(dir); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watching the access file's directory %s: %w", dir, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer w.Close()
		a.watch(ctx, w)
	}()
	return done, nil
}

func (a *Authenticator) watch(ctx context.Context, w *fsnotify.Watcher) {
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			if ev.Op == fsnotify.Chmod {
				continue
			}
			settle.Reset(watchSettle)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			a.opts.Logger.Warn("watching the access file", "path", a.opts.Path, "error", err)
		case <-settle.C:
			_ = a.Reload() // logged by Reload
		}
	}
}
