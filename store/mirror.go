package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// The mirror is this process's decoded copy of the current snapshot. One
// goroutine (follow) keeps it current: it reloads when an announcement names
// a newer version and, because pub/sub delivers at most once, also polls
// the current pointer every PollInterval. Loads are deduplicated
// (singleflight) and the mirror only ever moves to a newer version.

// syncTimeout bounds one poll plus the load of the snapshot it finds.
const syncTimeout = 2 * time.Minute

var errSnapshotMissing = errors.New("store: the snapshot the current pointer names is missing (expired or deleted)")

// syncState records the outcome of the last sync, for Current.
type syncState struct {
	mu       sync.Mutex
	failedAt time.Time // zero when the last sync succeeded
	err      error
}

// Current implements Store. When the mirror holds a snapshot it is returned
// at once, without a Redis round trip; BackendStale tells that the last
// poll or reload failed, so a newer snapshot may exist. Before the mirror
// ever loaded one, Current loads synchronously (a new process serves a
// populated Redis at once); it fails with EUNAVAILABLE when Redis holds no
// snapshot yet or cannot be reached.
func (r *Redis) Current(ctx context.Context) (View, error) {
	if s := r.mirror.Load(); s != nil {
		return View{Snapshot: s, BackendStale: r.backendStale()}, nil
	}
	// Fail fast while Redis is known to be down: each request would
	// otherwise wait for a connection attempt.
	r.state.mu.Lock()
	failedAt, lastErr := r.state.failedAt, r.state.err
	r.state.mu.Unlock()
	if !failedAt.IsZero() && time.Since(failedAt) < r.poll {
		return View{}, errNoBackend(lastErr)
	}
	ch := r.loads.DoChan("sync", func() (any, error) { return nil, r.sync() })
	select {
	case <-ctx.Done():
		return View{}, fmt.Errorf("store: wait for the first snapshot: %w", ctx.Err())
	case res := <-ch:
		if s := r.mirror.Load(); s != nil {
			return View{Snapshot: s, BackendStale: r.backendStale()}, nil
		}
		if res.Err != nil {
			return View{}, errNoBackend(res.Err)
		}
		return View{}, errNoSnapshot()
	}
}

func errNoBackend(cause error) error {
	return errRedis(vpnfacade.EUNAVAILABLE, "no snapshot is available: the snapshot store cannot be reached", cause)
}

// follow keeps the mirror current until Close.
func (r *Redis) follow() {
	defer close(r.done)
	sub := r.client.Subscribe(r.ctx, r.keys.announce)
	defer sub.Close()
	announcements := sub.Channel()
	tick := time.NewTicker(r.poll)
	defer tick.Stop()
	r.syncShared()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-tick.C:
			r.syncShared()
		case msg, ok := <-announcements:
			if !ok {
				announcements = nil
				continue
			}
			if strings.HasSuffix(msg.Payload, confirmedSuffix) {
				r.syncShared()
				continue
			}
			v, err := strconv.ParseUint(msg.Payload, 10, 64)
			if err != nil {
				r.log.Warn("ignoring a malformed announcement", "payload", msg.Payload)
				continue
			}
			if m := r.mirror.Load(); m == nil || m.Version < v {
				// The change log holds v already: the watch fan-out need
				// not wait for the snapshot to load.
				r.announced.Fire()
			}
			// A sync already in flight may have read the pointer before
			// it moved: joining it is not enough, so try twice.
			for range 2 {
				if m := r.mirror.Load(); (m != nil && m.Version >= v) || r.flipping.Load() == v {
					break
				}
				r.syncShared()
			}
		}
	}
}

// syncShared runs sync, joining one already in flight.
func (r *Redis) syncShared() {
	r.loads.Do("sync", func() (any, error) { return nil, r.sync() })
}

// sync reads the current pointer and, when it names a version newer than
// the mirror's, loads that version into the mirror. It records the outcome.
func (r *Redis) sync() error {
	ctx, cancel := context.WithTimeout(r.ctx, syncTimeout)
	defer cancel()
	err := r.syncOnce(ctx)
	if r.ctx.Err() != nil {
		return err // closing: not a backend failure
	}
	r.recordSync(err)
	return err
}

func (r *Redis) syncOnce(ctx context.Context) error {
	// The pointer read is bounded by one command timeout, not syncTimeout:
	// without it go-redis retries a read that timed out, and a frozen Redis
	// was reported stale only after two timeouts and a poll.
	pctx, cancel := context.WithTimeout(ctx, r.timeout)
	vals, err := r.client.MGet(pctx, r.keys.current, r.keys.confirmed).Result()
	cancel()
	if err != nil {
		return fmt.Errorf("store: read the current version: %w", err)
	}
	cur, _ := vals[0].(string)
	if cur == "" {
		// Nothing published yet, or Redis lost its data.
		if r.mirror.Load() != nil && !r.pointerGone.Swap(true) {
			r.log.Warn("redis holds no current snapshot any more (its keys were flushed, or it restarted empty); serving the mirrored snapshot until one is published")
		}
		return nil
	}
	r.pointerGone.Store(false)
	version, err := strconv.ParseUint(cur, 10, 64)
	if err != nil {
		return fmt.Errorf("store: the current version %.64q is not a number", cur)
	}
	if m := r.mirror.Load(); m != nil && m.Version >= version {
		// A confirmation of the mirror's version moves its refresh time.
		conf, _ := vals[1].(string)
		if cv, ok := confirmedVersion(conf); ok && cv == m.Version {
			if applied := r.applied.Load(); applied == nil || *applied != conf {
				at, partitions, err := r.loadConfirmation(ctx, cv)
				if err != nil {
					return err
				}
				r.advanceRefreshed(m.Refreshed(at, partitions))
				r.applied.Store(&conf)
			}
		}
		return nil
	}
	if version == r.flipping.Load() {
		// This process is publishing that version and is about to put it
		// in the mirror itself; should the publish fail after all, the
		// next poll loads it.
		return nil
	}
	snap, err := r.load(ctx, version)
	if err != nil {
		return err
	}
	if r.mirror.Load() == nil {
		// Nothing served yet: serve at once; the indexes follow, and a
		// query that needs one before then builds it.
		r.advance(snap)
		go snap.BuildIndexes()
		return nil
	}
	// Readers have a snapshot: none of them should pay for this one's
	// indexes.
	snap.BuildIndexes()
	r.advance(snap)
	return nil
}

// recordSync notes the outcome of a sync or a publish and logs a change of
// health.
func (r *Redis) recordSync(err error) {
	r.state.mu.Lock()
	defer r.state.mu.Unlock()
	if err != nil {
		r.state.failedAt, r.state.err = time.Now(), err
		if !r.stale.Swap(true) {
			if r.mirror.Load() != nil {
				r.log.Warn("redis cannot be read; serving the mirrored snapshot, marked stale", "error", err)
			} else {
				r.log.Warn("redis cannot be read and this process holds no snapshot; answering Unavailable until one can be loaded", "error", err)
			}
		}
		return
	}
	r.state.failedAt, r.state.err = time.Time{}, nil
	if r.stale.Swap(false) {
		r.log.Info("redis can be read again; the mirror is current")
	}
}

// load reads one version. Endpoints stay encoded: only the attributes the
// snapshot indexes are read from them. Its indexes are not built yet.
func (r *Redis) load(ctx context.Context, version uint64) (*snapshot.Snapshot, error) {
	key := r.keys.snapshot(version)
	vals, err := r.client.HMGet(ctx, key, metaFieldNames...).Result()
	if err != nil {
		return nil, fmt.Errorf("store: read version %d: %w", version, err)
	}
	meta, err := parseMeta(vals)
	if err != nil {
		return nil, fmt.Errorf("store: read version %d: %w", version, err)
	}
	all, err := r.readChunks(ctx, key, meta.chunks)
	if err != nil {
		return nil, fmt.Errorf("store: read version %d: %w", version, err)
	}
	snap, err := snapshot.FromWire(version, meta.refreshedAt, meta.partitions, all)
	if err != nil {
		return nil, fmt.Errorf("store: read version %d: %w", version, err)
	}
	if snap.Len() != meta.count {
		return nil, fmt.Errorf("store: read version %d: %d endpoints read, %d recorded", version, snap.Len(), meta.count)
	}
	return snap, nil
}

// readChunks reads the n endpoint chunks of the snapshot at key, in order:
// chunksPerTrip per command, up to parallelTrips commands at once on as
// many connections, so that Redis sends one reply while this process reads
// another. The chunks are go-redis's reply strings, not copies.
func (r *Redis) readChunks(ctx context.Context, key string, n int) ([][]byte, error) {
	all := make([][]byte, n)
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(parallelTrips)
	for start := 0; start < n; start += chunksPerTrip {
		fields := make([]string, 0, chunksPerTrip)
		for i := start; i < min(start+chunksPerTrip, n); i++ {
			fields = append(fields, chunkField(i))
		}
		g.Go(func() error {
			chunks, err := r.client.HMGet(ctx, key, fields...).Result()
			if err != nil {
				return err
			}
			for i, c := range chunks {
				s, ok := c.(string)
				if !ok {
					return fmt.Errorf("%s is missing", fields[i])
				}
				all[start+i] = stringBytes(s)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return all, nil
}

// advance makes s the mirror's snapshot unless the mirror already holds
// the same or a newer version.
func (r *Redis) advance(s *snapshot.Snapshot) {
	for {
		old := r.mirror.Load()
		if old != nil && old.Version >= s.Version {
			return
		}
		if r.mirror.CompareAndSwap(old, s) {
			// Newer data than a failed publish would have stored.
			r.publishFailed.Store(false)
			r.published.Fire()
			r.announced.Fire()
			return
		}
	}
}

// backendStale reports whether the mirror may be out of date: the last sync
// failed, or this process's last publish failed (its data is newer than
// what readers get) and no newer snapshot arrived since.
func (r *Redis) backendStale() bool {
	return r.stale.Load() || r.publishFailed.Load()
}

// ErrOutOfMemory is in the chain of a Publish error when Redis refused a
// write for lack of memory (maxmemory reached, nothing evictable).
var ErrOutOfMemory = errors.New("store: Redis is out of memory (maxmemory reached)")

// publishFailure returns the error to report for a publish (or
// confirmation) that failed on Redis: it names an out-of-memory Redis as
// such. When Redis refused the write with an error reply (out of memory,
// read-only, ...) while it can still be read, readers see the mirror as
// stale until a newer snapshot or confirmation reaches it: the data this
// process read upstream is newer than what it serves. (When Redis cannot
// be reached at all, the failing syncs mark the mirror stale already.)
func (r *Redis) publishFailure(err error) error {
	var reply redis.Error
	if errors.As(err, &reply) {
		r.publishFailed.Store(true)
	}
	if isOutOfMemory(err) {
		return errRedis(vpnfacade.EUNAVAILABLE, "the snapshot store is out of memory", fmt.Errorf("%w: %w", ErrOutOfMemory, err))
	}
	return errRedis(vpnfacade.EUNAVAILABLE, "the snapshot store cannot be reached", err)
}

// isOutOfMemory reports whether Redis refused a command with its OOM
// error ("OOM command not allowed when used memory > 'maxmemory'").
func isOutOfMemory(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(re.Error(), "OOM ")
}
