package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vpnfacade/vpnfacade/access"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
	"github.com/vpnfacade/vpnfacade/snapshot"
	"github.com/vpnfacade/vpnfacade/store"
)

// Defaults of WatchOptions.
const (
	// DefaultWatchHeartbeat is how often an idle watch stream gets a heartbeat.
	DefaultWatchHeartbeat = 30 * time.Second
	// DefaultWatchQueue is how many messages may wait for one watcher
	// before it is reset.
	DefaultWatchQueue = 64
	// DefaultMaxWatchers bounds the streams of one process.
	DefaultMaxWatchers = 10_000
	// DefaultMaxWatchersPerAddress bounds the streams of one client address.
	DefaultMaxWatchersPerAddress = 100
	// WatchBatch is the most endpoints one initial-state message carries.
	WatchBatch = 1000
)

// WatchOptions configures NewWatchHub.
type WatchOptions struct {
	// Reader gives the snapshots initial states are read from. Required.
	Reader *Reader
	// Log is the store's change log. Required.
	Log store.ChangeLog
	// Heartbeat is how often a stream with nothing to send gets a
	// heartbeat. Default DefaultWatchHeartbeat.
	Heartbeat time.Duration
	// Queue is how many messages may wait for one watcher; a watcher whose
	// queue is full is reset (sent a fresh initial state once it reads
	// again). Default DefaultWatchQueue.
	Queue int
	// MaxWatchers bounds the streams open in this process; beyond it a
	// watch fails with RESOURCE_EXHAUSTED. Default DefaultMaxWatchers.
	MaxWatchers int
	// MaxWatchersPerAddress bounds the streams of one client IP address.
	// Default DefaultMaxWatchersPerAddress.
	MaxWatchersPerAddress int
	// Logger receives the fan-out's failures; nil discards them.
	Logger *slog.Logger
	// Registerer receives the watch metrics (vpnfacade_watchers,
	// vpnfacade_watch_*); nil registers none.
	Registerer prometheus.Registerer
}

// WatchHub serves WatchClientVpnEndpoints: one goroutine follows the change
// log and fans each change out to the watchers' bounded queues without ever
// waiting on one; each stream's handler goroutine writes its own queue out.
type WatchHub struct {
	opts    WatchOptions
	log     *slog.Logger
	metrics *watchMetrics
	closed  chan struct{} // closed by Close: streams end
	done    chan struct{} // closed when the fan-out goroutine returns
	stop    context.CancelFunc
	once    sync.Once

	// refreshed is the refresh time of the newest change the fan-out
	// delivered: on a replica whose snapshot load lags the announcement,
	// heartbeats at that version know it before the snapshot does.
	refreshed atomic.Pointer[versionRefreshed]

	mu       sync.Mutex
	last     uint64 // the version the fan-out brought registered watchers to
	watchers map[*watcher]struct{}
	streams  int            // open streams, registered or not
	perAddr  map[string]int // open streams by client address
}

// versionRefreshed is a version and when it was refreshed.
type versionRefreshed struct {
	version uint64
	at      time.Time
}

// watcher is one stream's registration with the fan-out.
type watcher struct {
	match *snapshot.Matcher
	key   string // identical keys select identical endpoints
	json  bool   // the stream is answered in JSON
	queue chan queued
	at    atomic.Uint64 // the version the queued messages bring the client to
	// behind is signalled (once) when the fan-out dropped the watcher
	// because its queue was full or the log had a gap.
	behind chan struct{}
}

// queued is a change message waiting in a watcher's queue.
type queued struct {
	// msg is encoded once for every watcher of the same selection and
	// codec (see prepareWatchMessage).
	msg         *clientvpnv1.WatchClientVpnEndpointsResponse
	publishedAt time.Time
	// The message's version and refreshed_at.
	version     uint64
	refreshedAt time.Time
	// The message's counts of endpoints, for the metrics.
	added, modified, removed int
}

// NewWatchHub starts the fan-out. Close stops it and ends every stream.
func NewWatchHub(opts WatchOptions) (*WatchHub, error) {
	if opts.Reader == nil || opts.Log == nil {
		return nil, errors.New("server: watch hub needs a Reader and a change Log")
	}
	for name, v := range map[string]int{"queue": opts.Queue, "max watchers": opts.MaxWatchers, "max watchers per address": opts.MaxWatchersPerAddress} {
		if v < 0 {
			return nil, fmt.Errorf("server: watch %s must not be negative, got %d", name, v)
		}
	}
	if opts.Heartbeat < 0 {
		return nil, fmt.Errorf("server: watch heartbeat must not be negative, got %s", opts.Heartbeat)
	}
	opts.Heartbeat = cmp.Or(opts.Heartbeat, DefaultWatchHeartbeat)
	opts.Queue = cmp.Or(opts.Queue, DefaultWatchQueue)
	opts.MaxWatchers = cmp.Or(opts.MaxWatchers, DefaultMaxWatchers)
	opts.MaxWatchersPerAddress = cmp.Or(opts.MaxWatchersPerAddress, DefaultMaxWatchersPerAddress)
	h := &WatchHub{
		opts:     opts,
		log:      cmp.Or(opts.Logger, slog.New(slog.DiscardHandler)).With("component", "watch"),
		closed:   make(chan struct{}),
		done:     make(chan struct{}),
		watchers: map[*watcher]struct{}{},
		perAddr:  map[string]int{},
	}
	metrics, err := newWatchMetrics(opts.Registerer, h.Streams)
	if err != nil {
		return nil, fmt.Errorf("server: register the watch metrics: %w", err)
	}
	h.metrics = metrics
	ctx, stop := context.WithCancel(context.Background())
	h.stop = stop
	go h.fanOut(ctx)
	return h, nil
}

// Close ends every stream normally (clients see the stream end and resume
// elsewhere) and stops the fan-out. Call it before draining the HTTP
// server, which waits for streams.
func (h *WatchHub) Close() {
	h.once.Do(func() {
		close(h.closed)
		h.stop()
		<-h.done
	})
}

// fanOut follows the change log and hands each change to every registered
// watcher. It wakes when a version is announced, not when this process has
// loaded its snapshot: the log holds the change already, and a follower
// replica's load of the whole snapshot would otherwise delay every
// delivery. A watcher may so be told of a version a moment before this
// process's reads serve it; streams that start meanwhile send the snapshot
// they read and catch up from the log (see catchUp).
func (h *WatchHub) fanOut(ctx context.Context) {
	defer close(h.done)
	for {
		announced := h.opts.Log.Announced()
		if err := h.advance(ctx); err != nil && ctx.Err() == nil {
			h.log.Warn("watch: cannot read the change log; watchers wait for the next version", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-announced:
		case <-time.After(time.Second):
			// A backstop: a failed read is retried.
		}
	}
}

// advance delivers every change the log holds, up to the current version
// and past it when the log is ahead (announced, not loaded yet). The log
// ending before the current version is a gap.
func (h *WatchHub) advance(ctx context.Context) error {
	view, err := h.opts.Reader.store.Current(ctx)
	if err != nil {
		return nil // nothing published yet
	}
	h.mu.Lock()
	if h.last == 0 {
		// The first version the fan-out sees: it starts from there, or
		// from the oldest watcher registered before.
		h.last = view.Version
		for w := range h.watchers {
			h.last = min(h.last, w.at.Load())
		}
	}
	last := h.last
	h.mu.Unlock()
	for {
		changes, err := h.opts.Log.Changes(ctx, last, 100)
		if err != nil {
			return err
		}
		var gapTo uint64
		switch {
		case len(changes) == 0 && last >= view.Version:
			return nil // delivered everything
		case len(changes) == 0:
			gapTo = view.Version
		case changes[0].Base != last || changes[0].Gap:
			if changes[0].Version > view.Version {
				// Watchers relist at the gap's version: wait until this
				// process serves it (the mirror's move wakes the fan-out).
				return nil
			}
			gapTo = changes[0].Version
		}
		h.mu.Lock()
		if gapTo != 0 {
			// The log cannot take watchers from last onwards: every
			// watcher relists.
			for w := range h.watchers {
				h.dropLocked(w, resetLogGap)
			}
			h.last, last = gapTo, gapTo
			h.mu.Unlock()
			continue
		}
		for i, c := range changes {
			if i > 0 && (c.Base != changes[i-1].Version || c.Gap) {
				break // the next round sees the gap first
			}
			h.deliverLocked(c)
			if !c.RefreshedAt.IsZero() {
				h.refreshed.Store(&versionRefreshed{c.Version, c.RefreshedAt})
			}
			h.last, last = c.Version, c.Version
		}
		h.mu.Unlock()
	}
}

// deliverLocked queues c for every watcher, computing and encoding each
// distinct selection's message once per codec: a thousand watchers of the
// same selection share one encoding, which each stream's codec copies out.
// A watcher whose queue is full is dropped.
func (h *WatchHub) deliverLocked(c store.Change) {
	type selection struct {
		key  string
		json bool
	}
	msgs := map[selection]queued{}
	d := decoder{}
	for w := range h.watchers {
		if w.at.Load() >= c.Version {
			continue // registered at a newer version than the fan-out's
		}
		sel := selection{w.key, w.json}
		q, ok := msgs[sel]
		if !ok {
			msg, err := changeMessage(c, w.match, d)
			if err == nil && msg != nil {
				q = queued{publishedAt: c.PublishedAt, version: c.Version, refreshedAt: c.RefreshedAt, added: len(msg.Added), modified: len(msg.Modified), removed: len(msg.Removed)}
				q.msg, err = prepareWatchMessage(msg, w.json)
			}
			if err != nil {
				h.log.Error("watch: a change cannot be decoded; its watchers relist", "error", err)
				h.dropLocked(w, resetLogGap)
				continue
			}
			msgs[sel] = q
		}
		if q.msg != nil {
			select {
			case w.queue <- q:
			default:
				h.dropLocked(w, resetLagging)
				continue
			}
		}
		w.at.Store(c.Version)
	}
}

// prepareWatchMessage encodes msg for the binary or the JSON codec, into
// the unknown fields of an otherwise empty message: protoCodec copies
// binary records out as they are, jsonCodec the one whole-message JSON
// record (see appendJSON). Encoding once per selection, not once per stream, is
// what keeps a change to thousands of watchers cheap.
func prepareWatchMessage(msg *clientvpnv1.WatchClientVpnEndpointsResponse, json bool) (*clientvpnv1.WatchClientVpnEndpointsResponse, error) {
	var enc []byte
	if json {
		j, err := protojson.Marshal(msg)
		if err != nil {
			return nil, fmt.Errorf("server: encode a watch message: %w", err)
		}
		enc = protowire.AppendTag(make([]byte, 0, len(j)+16), wholeJSONField, protowire.BytesType)
		enc = protowire.AppendBytes(enc, j)
	} else {
		var err error
		if enc, err = proto.Marshal(msg); err != nil {
			return nil, fmt.Errorf("server: encode a watch message: %w", err)
		}
	}
	out := &clientvpnv1.WatchClientVpnEndpointsResponse{}
	out.ProtoReflect().SetUnknown(enc)
	return out, nil
}

// dropLocked unregisters w and tells its stream it fell behind, and why.
// The reset is counted now: a stream stuck writing may send it much later.
func (h *WatchHub) dropLocked(w *watcher, reason string) {
	h.metrics.resets.WithLabelValues(reason).Inc()
	delete(h.watchers, w)
	close(w.behind)
}

// decoder decodes the endpoints of one change once, however many
// selections include them.
type decoder map[*snapshot.Endpoint]*clientvpnv1.ClientVpnEndpoint

func (d decoder) message(e *snapshot.Endpoint) (*clientvpnv1.ClientVpnEndpoint, error) {
	if m, ok := d[e]; ok {
		return m, nil
	}
	m, err := e.Message()
	if err != nil {
		return nil, err
	}
	d[e] = m
	return m, nil
}

// changeMessage is what c changes in the selection of m; nil when nothing.
// An endpoint that starts matching is added, one that stops is removed.
func changeMessage(c store.Change, m *snapshot.Matcher, d decoder) (*clientvpnv1.WatchClientVpnEndpointsResponse, error) {
	msg := &clientvpnv1.WatchClientVpnEndpointsResponse{Version: c.Version, RefreshedAt: timestamppb.New(c.RefreshedAt)}
	var err error
	add := func(to *[]*clientvpnv1.ClientVpnEndpoint, e *snapshot.Endpoint) {
		if err == nil {
			var v *clientvpnv1.ClientVpnEndpoint
			if v, err = d.message(e); err == nil {
				*to = append(*to, v)
			}
		}
	}
	for _, e := range c.Added {
		if m.Match(e) {
			add(&msg.Added, e)
		}
	}
	for i, e := range c.Modified {
		was, is := m.Match(c.Previous[i]), m.Match(e)
		switch {
		case was && is:
			add(&msg.Modified, e)
		case is:
			add(&msg.Added, e)
		case was:
			msg.Removed = append(msg.Removed, endpointKey(e))
		}
	}
	for _, e := range c.Removed {
		if m.Match(e) {
			msg.Removed = append(msg.Removed, endpointKey(e))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("server: the change to version %d: %w", c.Version, err)
	}
	if len(msg.Added)+len(msg.Modified)+len(msg.Removed) == 0 {
		return nil, nil
	}
	return msg, nil
}

func endpointKey(e *snapshot.Endpoint) *clientvpnv1.ClientVpnEndpointKey {
	return &clientvpnv1.ClientVpnEndpointKey{ClientVpnEndpointId: e.ID(), Region: e.Region(), AccountId: e.AccountID()}
}

// register adds w at version at when the fan-out is there too; else it
// returns the fan-out's version, for the stream to catch up from the log
// first. A watcher ahead of the fan-out (it read a newer snapshot) is
// registered: the fan-out skips what it already has.
func (h *WatchHub) register(w *watcher, at uint64) (registered bool, last uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if at < h.last {
		return false, h.last
	}
	w.at.Store(at)
	w.behind = make(chan struct{})
	h.watchers[w] = struct{}{}
	return true, h.last
}

func (h *WatchHub) unregister(w *watcher) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.watchers[w]; ok {
		delete(h.watchers, w)
	}
}

// admit counts a new stream from addr, or refuses it over a limit.
func (h *WatchHub) admit(addr string) (release func(), err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.streams >= h.opts.MaxWatchers {
		return nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("this server has %d watch streams open, its limit; retry later or elsewhere", h.streams))
	}
	if h.perAddr[addr] >= h.opts.MaxWatchersPerAddress {
		return nil, connect.NewError(connect.CodeResourceExhausted,
			fmt.Errorf("your address has %d watch streams open, the limit per address", h.perAddr[addr]))
	}
	h.streams++
	h.perAddr[addr]++
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.streams--
		if h.perAddr[addr]--; h.perAddr[addr] <= 0 {
			delete(h.perAddr, addr)
		}
	}, nil
}

// Streams returns how many watch streams are open.
func (h *WatchHub) Streams() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.streams
}

// WatchClientVpnEndpoints implements clientvpnv1connect.ClientVpnServiceHandler.
func (s *ClientVpnService) WatchClientVpnEndpoints(ctx context.Context, req *clientvpnv1.WatchClientVpnEndpointsRequest, stream *connect.ServerStream[clientvpnv1.WatchClientVpnEndpointsResponse]) error {
	if s.watch == nil {
		return connect.NewError(connect.CodeUnimplemented, errors.New("watching is not enabled on this server"))
	}
	return s.watch.serve(ctx, req, stream, s.pending)
}

// watchStream is one stream being served.
type watchStream struct {
	hub    *WatchHub
	ids    []string
	q      snapshot.Query // the selection as a filter-only query
	w      *watcher
	stream *connect.ServerStream[clientvpnv1.WatchClientVpnEndpointsResponse]
	// pending hands initial states' endpoints to the codecs (see
	// attachEndpoints).
	pending *pendingEndpoints
	// fresh is the newest refresh time the stream sent for version
	// freshVersion, for heartbeats at that version once the current
	// snapshot has moved on (see refreshedAt).
	freshVersion uint64
	fresh        time.Time
}

func (h *WatchHub) serve(ctx context.Context, req *clientvpnv1.WatchClientVpnEndpointsRequest, stream *connect.ServerStream[clientvpnv1.WatchClientVpnEndpointsResponse], pending *pendingEndpoints) error {
	reader := h.opts.Reader
	// The caller's scope (access rules) applies to every message, as to List.
	sel := snapshot.Query{IDs: req.GetClientVpnEndpointIds(), Filters: make([]snapshot.Filter, len(req.GetFilters())), Within: withinScope(ctx)}
	for i, f := range req.GetFilters() {
		sel.Filters[i] = snapshot.Filter{Name: f.GetName(), Values: f.GetValues()}
	}
	match, err := snapshot.NewMatcher(sel)
	if err != nil {
		return reader.connectError(ctx, err)
	}
	release, err := h.admit(clientAddress(stream.Conn().Peer().Addr))
	if err != nil {
		return err
	}
	defer release()

	ws := &watchStream{
		hub: h, ids: sel.IDs, stream: stream, pending: pending,
		q: filterQuery(sel),
		w: &watcher{
			match: match, key: selectionKey(ctx, req),
			json:  jsonContentType(stream.Conn().RequestHeader().Get("Content-Type")),
			queue: make(chan queued, h.opts.Queue),
		},
	}
	defer h.unregister(ws.w)

	var at uint64
	resumed := false
	if req.ResumeFromVersion != nil {
		at, resumed, err = ws.resume(ctx, req.GetResumeFromVersion())
		if err != nil {
			return reader.connectError(ctx, err)
		}
	}
	if !resumed {
		if len(sel.IDs) > 0 && req.ResumeFromVersion == nil {
			// As List: every id asked for must exist, on a fresh start.
			view, err := reader.View(ctx)
			if err != nil {
				return reader.connectError(ctx, err)
			}
			if _, err := view.List(ctx, snapshot.Query{IDs: sel.IDs, Limit: 1, Within: sel.Within}); err != nil {
				return reader.connectError(ctx, err)
			}
		}
		if req.ResumeFromVersion != nil {
			h.metrics.resets.WithLabelValues(resetTooOld).Inc()
		}
		if at, err = ws.initial(ctx, req.ResumeFromVersion != nil); err != nil {
			return reader.connectError(ctx, err)
		}
	}
	return ws.follow(ctx, at, resumed)
}

// resume checks that the log can take the client from version v onwards:
// v is the current version, or the log holds the change right after it.
func (ws *watchStream) resume(ctx context.Context, v uint64) (at uint64, ok bool, err error) {
	view, err := ws.hub.opts.Reader.View(ctx)
	if err != nil {
		return 0, false, err
	}
	if v == view.Version {
		return v, true, nil
	}
	if v == 0 {
		return 0, false, nil
	}
	next, err := ws.hub.opts.Log.Changes(ctx, v, 1)
	if err != nil {
		return 0, false, err
	}
	if len(next) == 1 && next[0].Base == v && !next[0].Gap {
		return v, true, nil
	}
	// v may be a version the log still starts from but the mirror of this
	// replica is past.
	if v > view.Version {
		if prev, err := ws.hub.opts.Log.Changes(ctx, v-1, 1); err == nil && len(prev) == 1 && prev[0].Version == v {
			return v, true, nil
		}
	}
	return 0, false, nil
}

// initial sends the current matching set, in batches, then the marker
// that ends it; it returns the version sent.
func (ws *watchStream) initial(ctx context.Context, reset bool) (uint64, error) {
	view, err := ws.hub.opts.Reader.View(ctx)
	if err != nil {
		return 0, err
	}
	q := ws.q
	q.Limit = WatchBatch
	refreshed := timestamppb.New(view.RefreshedAt)
	for {
		page, err := view.List(ctx, q)
		if err != nil {
			return 0, err
		}
		if len(page.Endpoints) > 0 {
			// The endpoints' encodings from the snapshot, as List sends them.
			msg := &clientvpnv1.WatchClientVpnEndpointsResponse{Version: view.Version, Initial: true, Reset_: reset, RefreshedAt: refreshed}
			attachEndpoints(ws.pending, msg, page.Endpoints)
			if err := ws.stream.Send(msg); err != nil {
				return 0, err
			}
			ws.hub.metrics.sent(messageInitial, len(page.Endpoints), 0, 0, 0)
		}
		if page.NextToken == "" {
			break
		}
		q.NextToken = page.NextToken
	}
	if err := ws.stream.Send(&clientvpnv1.WatchClientVpnEndpointsResponse{
		Version: view.Version, Initial: true, InitialComplete: true, Reset_: reset, RefreshedAt: refreshed,
	}); err != nil {
		return 0, err
	}
	ws.hub.metrics.sent(messageInitial, 0, 0, 0, 0)
	ws.noteRefreshed(view.Version, view.RefreshedAt)
	return view.Version, nil
}

// follow catches the client up from version at through the log, registers
// it with the fan-out and writes its queue out until the client leaves or
// the hub closes. A watcher that falls behind gets a fresh initial state.
// A resumed client (resumed: at is its resume version) is replayed the
// changes up to the current version, then sent a heartbeat, so that it
// knows it is current without waiting for the heartbeat interval.
func (ws *watchStream) follow(ctx context.Context, at uint64, resumed bool) error {
	h := ws.hub
	target := at
	if resumed {
		view, err := h.opts.Reader.store.Current(ctx)
		if err != nil {
			return h.opts.Reader.connectError(ctx, err)
		}
		target = view.Version
	}
	for {
		var err error
		if at, err = ws.catchUp(ctx, at, target); err != nil {
			if errors.Is(err, errBehind) {
				h.metrics.resets.WithLabelValues(resetTooOld).Inc()
				resumed = false // the initial state ends with its own marker
				if at, err = ws.initial(ctx, true); err != nil {
					return h.opts.Reader.connectError(ctx, err)
				}
				target = at
				continue
			}
			return h.opts.Reader.connectError(ctx, err)
		}
		if resumed {
			resumed = false
			// The fan-out may have moved the watcher on since: read its
			// version before looking at its queue, as pump does.
			if v := ws.w.at.Load(); len(ws.w.queue) == 0 {
				at = v
			}
			if err := ws.heartbeat(ctx, at); err != nil {
				return h.opts.Reader.connectError(ctx, err)
			}
		}
		err = ws.pump(ctx)
		switch {
		case errors.Is(err, errBehind):
			for len(ws.w.queue) > 0 {
				<-ws.w.queue
			}
			if at, err = ws.initial(ctx, true); err != nil {
				return h.opts.Reader.connectError(ctx, err)
			}
			target = at
		case errors.Is(err, errHubClosed):
			return nil
		default:
			return h.opts.Reader.connectError(ctx, err)
		}
	}
}

var (
	errBehind    = errors.New("the watcher fell behind the change log")
	errHubClosed = errors.New("the watch hub closed")
)

// catchUp replays the log from at until version target and the fan-out
// are reached, then registers the watcher. errBehind: the log cannot take
// it from at.
func (ws *watchStream) catchUp(ctx context.Context, at, target uint64) (uint64, error) {
	for {
		upTo := target
		if at >= target {
			ok, last := ws.hub.register(ws.w, at)
			if ok {
				return at, nil
			}
			upTo = last
		}
		changes, err := ws.hub.opts.Log.Changes(ctx, at, min(100, ws.hub.opts.Queue))
		if err != nil {
			return at, err
		}
		if len(changes) == 0 || changes[0].Version > upTo {
			return at, errBehind
		}
		for _, c := range changes {
			if c.Version > upTo {
				break
			}
			if c.Base != at || c.Gap {
				return at, errBehind
			}
			msg, err := changeMessage(c, ws.w.match, decoder{})
			if err != nil {
				return at, err
			}
			if msg != nil {
				// A replayed change may have been confirmed since.
				refreshed := ws.refreshedAt(ctx, c.Version, c.RefreshedAt)
				msg.RefreshedAt = timestamppb.New(refreshed)
				if err := ws.stream.Send(msg); err != nil {
					return at, err
				}
				ws.hub.metrics.sent(messageChange, 0, len(msg.Added), len(msg.Modified), len(msg.Removed))
				ws.noteRefreshed(c.Version, refreshed)
			}
			at = c.Version
		}
	}
}

// pump writes the watcher's queue out, with heartbeats when idle.
func (ws *watchStream) pump(ctx context.Context) error {
	hb := time.NewTicker(ws.hub.opts.Heartbeat)
	defer hb.Stop()
	w := ws.w
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ws.hub.closed:
			return errHubClosed
		case q := <-w.queue:
			if err := ws.stream.Send(q.msg); err != nil {
				return err
			}
			ws.hub.metrics.delivered(q.publishedAt, time.Now())
			ws.hub.metrics.sent(messageChange, 0, q.added, q.modified, q.removed)
			ws.noteRefreshed(q.version, q.refreshedAt)
			hb.Reset(ws.hub.opts.Heartbeat)
		case <-w.behind:
			return errBehind
		case <-hb.C:
			// Read the version before looking at the queue: the fan-out
			// queues a message before it moves the version past it.
			at := w.at.Load()
			if len(w.queue) > 0 {
				continue
			}
			if err := ws.heartbeat(ctx, at); err != nil {
				return err
			}
		}
	}
}

// heartbeat tells the client that nothing changed for it up to version at,
// and when at was last refreshed.
func (ws *watchStream) heartbeat(ctx context.Context, at uint64) error {
	msg := &clientvpnv1.WatchClientVpnEndpointsResponse{Version: at, Heartbeat: true}
	if refreshed := ws.refreshedAt(ctx, at, time.Time{}); !refreshed.IsZero() {
		msg.RefreshedAt = timestamppb.New(refreshed)
		ws.noteRefreshed(at, refreshed)
	}
	if err := ws.stream.Send(msg); err != nil {
		return err
	}
	ws.hub.metrics.sent(messageHeartbeat, 0, 0, 0, 0)
	return nil
}

// refreshedAt is when version v was last refreshed, as far as the stream
// knows: the current snapshot's refresh time when it is v (a refresh that
// found the data unchanged moves it without a new version), else the newest
// of what the stream sent for v, what the fan-out delivered v with and the
// refresh time v was published with, known (zero when unknown).
func (ws *watchStream) refreshedAt(ctx context.Context, v uint64, known time.Time) time.Time {
	if view, err := ws.hub.opts.Reader.store.Current(ctx); err == nil && view.Version == v {
		return view.RefreshedAt
	}
	if r := ws.hub.refreshed.Load(); r != nil && r.version == v && r.at.After(known) {
		known = r.at
	}
	if ws.freshVersion == v && ws.fresh.After(known) {
		return ws.fresh
	}
	return known
}

// noteRefreshed records that the stream told the client version v was
// refreshed at t.
func (ws *watchStream) noteRefreshed(v uint64, t time.Time) {
	ws.freshVersion, ws.fresh = v, t
}

// filterQuery expresses a selection's ids as an endpoint-id filter, which,
// unlike ids, does not require each to exist.
func filterQuery(sel snapshot.Query) snapshot.Query {
	q := snapshot.Query{Filters: sel.Filters, Within: sel.Within}
	if len(sel.IDs) > 0 {
		escaped := make([]string, len(sel.IDs))
		r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`)
		for i, id := range sel.IDs {
			escaped[i] = r.Replace(id)
		}
		q.Filters = append([]snapshot.Filter{{Name: snapshot.FilterEndpointID, Values: escaped}}, q.Filters...)
	}
	return q
}

// selectionKey identifies a request's selection: watchers with equal keys
// share the fan-out's messages. The caller's principal is part of it, since
// access rules may show two callers different parts of the data.
func selectionKey(ctx context.Context, req *clientvpnv1.WatchClientVpnEndpointsRequest) string {
	var b strings.Builder
	if p, ok := access.FromContext(ctx); ok {
		fmt.Fprintf(&b, "p%d:%s", len(p.Name()), p.Name())
	}
	for _, id := range req.GetClientVpnEndpointIds() {
		fmt.Fprintf(&b, "i%d:%s", len(id), id)
	}
	for _, f := range req.GetFilters() {
		fmt.Fprintf(&b, "f%d:%s", len(f.GetName()), f.GetName())
		for _, v := range f.GetValues() {
			fmt.Fprintf(&b, "v%d:%s", len(v), v)
		}
	}
	return b.String()
}

// jsonContentType reports whether a request's content type selects the
// json codec (application/json, application/connect+json,
// application/grpc+json, application/grpc-web+json), as connect-go picks
// codecs for streams.
func jsonContentType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	_, sub, _ := strings.Cut(mt, "/")
	return sub == "json" || strings.HasSuffix(sub, "+json")
}

// clientAddress is the IP of a peer address "host:port".
func clientAddress(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
