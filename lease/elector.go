// Package lease elects one writer among the replicas that share a data set:
// a Redis lease with fencing epochs for many replicas, and Solo for a
// process that is alone with its store.
package lease

import "context"

// Elector runs lead whenever this process is the writer, with a context
// that ends when it stops being the writer and the fencing epoch of that
// term (see Lease). Run returns nil once ctx is done.
type Elector interface {
	Run(ctx context.Context, lead func(leadCtx context.Context, epoch uint64) error) error
}

var (
	_ Elector = (*Lease)(nil)
	_ Elector = Solo{}
)

// Solo is the Elector of a process alone with its store (the in-memory
// store): it always leads, with epoch 0.
type Solo struct{}

// Run implements Elector: it calls lead once with ctx and returns its
// error, or nil when ctx ended.
func (Solo) Run(ctx context.Context, lead func(leadCtx context.Context, epoch uint64) error) error {
	err := lead(ctx, 0)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
