package store

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// The Redis change log is a stream, vpnfacade:{N}:changes, capped at
// RedisOptions.ChangeLogLength entries and trimmed of entries published
// longer than RedisOptions.ChangeLogAge ago. The publish script
// (flipScript) appends one entry and trims in the same step that moves the
// current pointer, so the log and the snapshots never disagree and any
// replica can read it. Readers also skip entries past the age that no
// publish has trimmed yet.
//
// Entry id "<version>-0"; fields:
//
//	base      the version that was current before (0: none)
//	gap       "1" when the change is not recorded (watchers relist)
//	at        the version's refresh time, RFC 3339
//	pub       when the version was published: Unix time in microseconds,
//	          by the writer's clock (absent in entries written before)
//	added, modified, previous, removed
//	          endpoints as in a snapshot chunk (see snapshot.FromWire)
const (
	changeFieldBase     = "base"
	changeFieldGap      = "gap"
	changeFieldAt       = "at"
	changeFieldPub      = "pub"
	changeFieldAdded    = "added"
	changeFieldModified = "modified"
	changeFieldPrevious = "previous"
	changeFieldRemoved  = "removed"
)

// changeFields encodes c's content as stream fields (base and gap are
// written by the publish script, which knows the real base). The refresh
// and publish times come first, the only fields of a gap: the script keeps
// those four values when it turns a change into a gap.
func changeFields(c Change) []any {
	fields := []any{changeFieldAt, c.RefreshedAt.UTC().Format(time.RFC3339Nano), changeFieldPub, strconv.FormatInt(c.PublishedAt.UnixMicro(), 10)}
	if c.Gap {
		return fields
	}
	for _, l := range []struct {
		name      string
		endpoints []*snapshot.Endpoint
	}{
		{changeFieldAdded, c.Added}, {changeFieldModified, c.Modified},
		{changeFieldPrevious, c.Previous}, {changeFieldRemoved, c.Removed},
	} {
		var b []byte
		for _, e := range l.endpoints {
			b = protowire.AppendBytes(b, e.Wire())
		}
		fields = append(fields, l.name, b)
	}
	return fields
}

// parseChange decodes one stream entry.
func parseChange(id string, values map[string]any) (Change, error) {
	var c Change
	var err error
	ms, _, _ := strings.Cut(id, "-")
	if c.Version, err = strconv.ParseUint(ms, 10, 64); err != nil {
		return c, fmt.Errorf("store: change log entry id %q: %w", id, err)
	}
	str := func(name string) string { s, _ := values[name].(string); return s }
	if c.Base, err = strconv.ParseUint(str(changeFieldBase), 10, 64); err != nil {
		return c, fmt.Errorf("store: change log entry %s: base: %w", id, err)
	}
	if at := str(changeFieldAt); at != "" {
		if c.RefreshedAt, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return c, fmt.Errorf("store: change log entry %s: at: %w", id, err)
		}
	}
	if pub := str(changeFieldPub); pub != "" {
		us, err := strconv.ParseInt(pub, 10, 64)
		if err != nil {
			return c, fmt.Errorf("store: change log entry %s: pub: %w", id, err)
		}
		c.PublishedAt = time.UnixMicro(us).UTC()
	}
	if c.Gap = str(changeFieldGap) == "1"; c.Gap {
		return c, nil
	}
	for _, l := range []struct {
		name string
		to   *[]*snapshot.Endpoint
	}{
		{changeFieldAdded, &c.Added}, {changeFieldModified, &c.Modified},
		{changeFieldPrevious, &c.Previous}, {changeFieldRemoved, &c.Removed},
	} {
		// Each list is a run of encodings as a snapshot chunk holds them;
		// a snapshot of the list reads their attributes. Modified and
		// Previous hold the same keys, so both come out in the same order.
		s, err := snapshot.FromWire(c.Version, c.RefreshedAt, nil, [][]byte{[]byte(str(l.name))})
		if err != nil {
			return c, fmt.Errorf("store: change log entry %s: %s: %w", id, l.name, err)
		}
		*l.to = slices.Collect(s.All())
	}
	if len(c.Modified) != len(c.Previous) {
		return c, fmt.Errorf("store: change log entry %s: %d modified, %d previous values", id, len(c.Modified), len(c.Previous))
	}
	return c, nil
}

// Changes implements ChangeLog: it reads the stream from after's successor.
func (r *Redis) Changes(ctx context.Context, after uint64, limit int) ([]Change, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	msgs, err := r.client.XRangeN(ctx, r.keys.changes, strconv.FormatUint(after+1, 10)+"-0", "+", int64(limit)).Result()
	if err != nil {
		return nil, errRedis(vpnfacade.EUNAVAILABLE, "the change log cannot be read", fmt.Errorf("store: read the change log after version %d: %w", after, err))
	}
	out := make([]Change, 0, len(msgs))
	for _, m := range msgs {
		c, err := parseChange(m.ID, m.Values)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", vpnfacade.Errorf(vpnfacade.EINTERNAL, "", "internal error"), err)
		}
		out = append(out, c)
	}
	return dropExpired(out, r.now().Add(-r.logAge)), nil
}

// Published implements ChangeLog: the channel closes when the mirror moves.
func (r *Redis) Published() <-chan struct{} { return r.published.Wait() }

// Announced implements ChangeLog: the channel closes when an announcement
// of a newer version than the mirror's arrives, or when the mirror moves
// (a version found by polling, or published by this process).
func (r *Redis) Announced() <-chan struct{} { return r.announced.Wait() }

var _ ChangeLog = (*Redis)(nil)
