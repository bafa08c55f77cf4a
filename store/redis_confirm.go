package store

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// A refresh that reads the current data again unchanged does not rewrite the
// snapshot: it records the new refresh time and partition states in the
// current version's hash, and in the confirmed key, which mirrors poll with
// the current pointer:
//
//	vpnfacade:{N}:confirmed   "<version> <random id>", the last confirmation
//
// The id, not the refresh time, tells mirrors a confirmation is new: when
// every partition failed, a confirmation keeps the refresh time and changes
// only the partitions' states.

// confirmedSuffix marks an announcement of a confirmation, not of a new
// version: "<version>:confirmed".
const confirmedSuffix = ":confirmed"

// confirmScript records a confirmation, or refuses one whose writer epoch is
// below the stored fencing epoch or whose version is no longer current.
//
//	KEYS[1] current pointer, KEYS[2] fencing epoch, KEYS[3] the version's hash,
//	KEYS[4] confirmed key
//	ARGV[1] version, ARGV[2] writer epoch, ARGV[3] refreshed_at, ARGV[4]
//	partitions (JSON), ARGV[5] announcement channel, ARGV[6] the
//	confirmation's id
//
// Returns {status, detail}: {"ok", version}, {"epoch", stored epoch} or
// {"version", current version}.
var confirmScript = redis.NewScript(LuaDecimalLess + `
local stored = redis.call('GET', KEYS[2]) or '0'
if less(ARGV[2], stored) then
  return {'epoch', stored}
end
local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] or redis.call('EXISTS', KEYS[3]) == 0 then
  return {'version', cur or ''}
end
if less(stored, ARGV[2]) then
  redis.call('SET', KEYS[2], ARGV[2])
end
redis.call('HSET', KEYS[3], 'refreshed_at', ARGV[3], 'partitions', ARGV[4])
redis.call('SET', KEYS[4], ARGV[1] .. ' ' .. ARGV[6])
redis.call('PUBLISH', ARGV[5], ARGV[1] .. ':confirmed')
return {'ok', ARGV[1]}
`)

// Confirm implements Store: it writes a few hundred bytes, whatever the
// snapshot's size.
func (r *Redis) Confirm(ctx context.Context, c Confirmation) (*snapshot.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: confirm: %w", err)
	}
	r.publishMu.Lock()
	defer r.publishMu.Unlock()
	partitions := normalizePartitions(c.Partitions)
	at := c.RefreshedAt.Round(0).UTC()
	meta, err := snapshotMeta{refreshedAt: at, partitions: partitions}.fields(c.Epoch)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", vpnfacade.Errorf(vpnfacade.EINTERNAL, "", "the confirmation cannot be encoded"), err)
	}
	id := rand.Text()
	// meta is field, value pairs: refreshed_at and partitions are the 2nd
	// and 3rd pairs (see snapshotMeta.fields).
	res, err := confirmScript.Run(ctx, r.client,
		[]string{r.keys.current, r.keys.epoch, r.keys.snapshot(c.Version), r.keys.confirmed},
		c.Version, strconv.FormatUint(c.Epoch, 10), meta[3], meta[5], r.keys.announce, id,
	).StringSlice()
	if err != nil {
		return nil, r.publishFailure(fmt.Errorf("store: confirm version %d: %w", c.Version, err))
	}
	if len(res) != 2 {
		return nil, fmt.Errorf("%w: store: confirm script returned %q", vpnfacade.Errorf(vpnfacade.EINTERNAL, "", "internal error"), res)
	}
	switch res[0] {
	case "ok":
	case "epoch":
		return nil, vpnfacade.Errorf(vpnfacade.ECONFLICT, "",
			"writer epoch %d is older than epoch %s: another writer has taken over", c.Epoch, res[1])
	default:
		return nil, vpnfacade.Errorf(vpnfacade.ECONFLICT, "", "version %d is no longer current (now %q)", c.Version, res[1])
	}
	m := r.mirror.Load()
	if m == nil || m.Version != c.Version {
		// The mirror has not loaded this version yet: the next sync does.
		return nil, vpnfacade.Errorf(vpnfacade.ECONFLICT, "", "version %d is not in this process's mirror yet", c.Version)
	}
	snap := m.Refreshed(at, partitions)
	r.advanceRefreshed(snap)
	confirmed := strconv.FormatUint(c.Version, 10) + " " + id
	r.applied.Store(&confirmed)
	r.recordSync(nil)
	return snap, nil
}

// confirmedVersion reads the version of the confirmed key's value; ok is
// false when it is absent or malformed.
func confirmedVersion(v string) (uint64, bool) {
	ver, _, found := strings.Cut(v, " ")
	version, err := strconv.ParseUint(ver, 10, 64)
	return version, found && err == nil
}

// advanceRefreshed makes s, a confirmation of the mirror's version, the
// mirror's snapshot unless the mirror moved on to another version. (A
// confirmation may move the refresh time back: when every partition failed,
// the data is dated by its last good read.)
func (r *Redis) advanceRefreshed(s *snapshot.Snapshot) {
	for {
		old := r.mirror.Load()
		if old == nil || old.Version != s.Version {
			return
		}
		if r.mirror.CompareAndSwap(old, s) {
			// Data confirmed later than a failed publish or confirmation.
			r.publishFailed.Store(false)
			return
		}
	}
}

// loadConfirmation reads the refresh time and partitions of a version.
func (r *Redis) loadConfirmation(ctx context.Context, version uint64) (time.Time, []snapshot.Partition, error) {
	vals, err := r.client.HMGet(ctx, r.keys.snapshot(version), metaFieldNames...).Result()
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("store: read the confirmation of version %d: %w", version, err)
	}
	meta, err := parseMeta(vals)
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("store: read the confirmation of version %d: %w", version, err)
	}
	return meta.refreshedAt, meta.partitions, nil
}
