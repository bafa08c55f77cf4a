package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vpnfacade/vpnfacade"
	"github.com/vpnfacade/vpnfacade/snapshot"
)

// pendingTTL bounds how long the keys of a version being written live
// before the pointer moves to it: a writer that dies mid-publish leaves
// nothing behind for longer.
const pendingTTL = 15 * time.Minute

// cleanupTimeout bounds the deletion of a refused or failed version.
const cleanupTimeout = 5 * time.Second

// LuaDecimalLess defines the Lua function less(a, b), which compares two
// non-negative decimal integers given as strings. Scripts that compare
// versions or epochs prepend it: Lua numbers are doubles, exact only up to
// 2^53, while versions and epochs are uint64. The writer lease uses it too.
const LuaDecimalLess = `
local function less(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
`

// nextVersionScript takes the next version from the counter. A counter that
// does not exist (a new namespace, or a Redis that lost its data) starts
// from ARGV[1] (the Unix time in milliseconds, or the writer's mirror
// version if larger) and never below the current pointer, so a version a
// mirror already holds is never issued again.
//
//	KEYS[1] counter, KEYS[2] current pointer; ARGV[1] seed
var nextVersionScript = redis.NewScript(LuaDecimalLess + `
if redis.call('EXISTS', KEYS[1]) == 0 then
  local seed = ARGV[1]
  local cur = redis.call('GET', KEYS[2])
  if cur and less(seed, cur) then seed = cur end
  redis.call('SET', KEYS[1], seed)
end
return redis.call('INCR', KEYS[1])
`)

// flipScript moves the current pointer to a fully written version, or
// refuses. It refuses a writer whose epoch is below the stored fencing epoch
// and a version not newer than the current one, deleting the refused
// version's keys. On success it records the epoch, makes the new version
// permanent, lets the previous one expire after the grace period, and
// announces the new version; it keeps at most a number of superseded
// versions. In the same step it appends the version's change to the change
// log: the diff the writer computed when it was computed against the
// version being replaced, else a gap. Running it twice for the same version
// (a client retry) succeeds twice and changes nothing the second time.
//
//	KEYS[1] current pointer, KEYS[2] fencing epoch, KEYS[3] the new version's hash,
//	KEYS[4] change log stream, KEYS[5] the list of superseded versions still kept
//	ARGV[1] version, ARGV[2] writer epoch, ARGV[3] grace in ms,
//	ARGV[4] snapshot key prefix, ARGV[5] announcement channel,
//	ARGV[6] the version the change was computed against ("0": none),
//	ARGV[7] "1" when the change is a gap, ARGV[8] change log length,
//	ARGV[9] how many superseded versions to keep at most,
//	ARGV[10] the change log's age cutoff: entries published before this
//	Unix time in microseconds are trimmed,
//	ARGV[11…] the change's fields and values, refresh and publish time first
//
// Returns {status, detail}: {"ok", version}, {"epoch", stored epoch},
// {"version", current version} or {"missing", ""}.
var flipScript = redis.NewScript(LuaDecimalLess + `
local version, epoch = ARGV[1], ARGV[2]
local cur = redis.call('GET', KEYS[1])
if cur == version then
  return {'ok', version}
end
local function refuse(status, detail)
  if redis.call('HEXISTS', KEYS[3], 'published') == 0 then
    redis.call('DEL', KEYS[3])
  end
  return {status, detail}
end
local stored = redis.call('GET', KEYS[2]) or '0'
if less(epoch, stored) then
  return refuse('epoch', stored)
end
if cur and not less(cur, version) then
  return refuse('version', cur)
end
if redis.call('EXISTS', KEYS[3]) == 0 then
  return {'missing', ''}
end
local base = cur or '0'
local gap = ARGV[7]
if base ~= ARGV[6] then gap = '1' end
local top = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', 1)
if top[1] and not less(string.match(top[1][1], '^%d+'), version) then
  -- The log is ahead of the pointer (it survived a loss of the pointer):
  -- it cannot be continued, so start it over.
  redis.call('DEL', KEYS[4])
end
local entry = {'XADD', KEYS[4], 'MAXLEN', ARGV[8], version .. '-0', 'base', base, 'gap', gap}
local last = #ARGV
if gap == '1' then last = 14 end
for i = 11, last do entry[#entry+1] = ARGV[i] end
redis.call(unpack(entry))
-- Trim the entries published before the age cutoff, oldest first, at most
-- 100 per publish (readers skip any left over). An entry without a publish
-- time stays until the length trims it.
local cutoff = tonumber(ARGV[10])
local oldest = redis.call('XRANGE', KEYS[4], '-', '+', 'COUNT', 100)
local expired = nil
for _, e in ipairs(oldest) do
  local pub = nil
  for i = 1, #e[2], 2 do
    if e[2][i] == 'pub' then pub = tonumber(e[2][i+1]) end
  end
  if pub == nil or pub >= cutoff then break end
  expired = e[1]
end
if expired then
  redis.call('XTRIM', KEYS[4], 'MINID', expired)
  redis.call('XDEL', KEYS[4], expired)
end
redis.call('HSET', KEYS[3], 'published', '1')
redis.call('PERSIST', KEYS[3])
redis.call('SET', KEYS[1], version)
if less(stored, epoch) then
  redis.call('SET', KEYS[2], epoch)
end
if cur then
  redis.call('PEXPIRE', ARGV[4] .. cur, ARGV[3])
  -- At most ARGV[9] superseded versions stay, however often versions come.
  redis.call('RPUSH', KEYS[5], cur)
  while redis.call('LLEN', KEYS[5]) > tonumber(ARGV[9]) do
    redis.call('DEL', ARGV[4] .. redis.call('LPOP', KEYS[5]))
  end
end
redis.call('PUBLISH', ARGV[5], version)
return {'ok', version}
`)

// Publish implements Store. It encodes the endpoints (once: the mirror
// serves the same bytes), takes the next
// version, writes the version's hash in pipelined chunks, then flips the
// current pointer with one script. A publication whose Epoch is below the
// stored fencing epoch (see EpochKey), or whose version was overtaken by a
// concurrent writer, is refused with ECONFLICT and leaves no keys behind.
// On success this process's mirror holds the new snapshot at once.
func (r *Redis) Publish(ctx context.Context, pub Publication) (*snapshot.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("store: publish: %w", err)
	}
	r.publishMu.Lock()
	defer r.publishMu.Unlock()

	// Normalise times so that this process's mirror and every process that
	// loads the snapshot from Redis hold equal values.
	partitions := normalizePartitions(pub.Partitions)
	snap, err := pub.snapshot(pub.RefreshedAt.Round(0).UTC(), partitions)
	if err != nil {
		return nil, err
	}
	chunks := encodeChunks(snap)
	meta := snapshotMeta{refreshedAt: snap.RefreshedAt, partitions: partitions, count: snap.Len(), chunks: len(chunks)}
	fields, err := meta.fields(pub.Epoch)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", vpnfacade.Errorf(vpnfacade.EINTERNAL, "", "the snapshot cannot be encoded"), err)
	}

	seed := uint64(time.Now().UnixMilli())
	if m := r.mirror.Load(); m != nil {
		seed = max(seed, m.Version)
	}
	version, err := nextVersionScript.Run(ctx, r.client, []string{r.keys.version, r.keys.current}, seed).Uint64()
	if err != nil {
		return nil, r.publishFailure(fmt.Errorf("store: take the next version: %w", err))
	}
	snap.Version = version
	key := r.keys.snapshot(version)
	change := newChange(pub.Base, snap, pub.Diff)
	var base uint64
	if pub.Base != nil {
		base = pub.Base.Version
	}
	gap := "0"
	if change.Gap {
		gap = "1"
	}

	if err := r.writeVersion(ctx, key, fields, chunks); err != nil {
		r.discard(ctx, key)
		return nil, r.publishFailure(fmt.Errorf("store: write version %d: %w", version, err))
	}

	r.flipping.Store(version)
	defer r.flipping.Store(0)
	change.PublishedAt = r.now()
	cutoff := change.PublishedAt.Add(-r.logAge).UnixMicro()
	res, err := flipScript.Run(ctx, r.client,
		[]string{r.keys.current, r.keys.epoch, key, r.keys.changes, r.keys.retained},
		append([]any{version, strconv.FormatUint(pub.Epoch, 10), r.grace.Milliseconds(), r.keys.prefix + "snapshot:", r.keys.announce,
			strconv.FormatUint(base, 10), gap, r.logLen, r.retain, cutoff}, changeFields(change)...)...,
	).StringSlice()
	if err != nil {
		r.discard(ctx, key)
		return nil, r.publishFailure(fmt.Errorf("store: flip the current pointer to version %d: %w", version, err))
	}
	if len(res) != 2 {
		return nil, fmt.Errorf("%w: store: publish script returned %q", vpnfacade.Errorf(vpnfacade.EINTERNAL, "", "internal error"), res)
	}
	switch res[0] {
	case "ok":
	case "epoch":
		return nil, vpnfacade.Errorf(vpnfacade.ECONFLICT, "",
			"writer epoch %d is older than epoch %s: another writer has taken over", pub.Epoch, res[1])
	case "version":
		return nil, vpnfacade.Errorf(vpnfacade.ECONFLICT, "",
			"version %d was overtaken by version %s, published concurrently", version, res[1])
	case "missing":
		return nil, fmt.Errorf("%w: store: version %d expired before the pointer could move to it",
			vpnfacade.Errorf(vpnfacade.EINTERNAL, "", "internal error"), version)
	default:
		return nil, fmt.Errorf("%w: store: publish script returned %q", vpnfacade.Errorf(vpnfacade.EINTERNAL, "", "internal error"), res)
	}

	r.advance(snap)
	r.recordSync(nil)
	return snap, nil
}

// normalizePartitions copies partitions with their times normalised, so that
// this process's mirror and every process that loads the snapshot from
// Redis hold equal values.
func normalizePartitions(partitions []snapshot.Partition) []snapshot.Partition {
	out := slices.Clone(partitions)
	for i := range out {
		out[i].RefreshedAt = out[i].RefreshedAt.Round(0).UTC()
	}
	return out
}

// writeVersion writes the hash of a version: the meta fields with a TTL
// first, then the chunks, a few per round trip.
func (r *Redis) writeVersion(ctx context.Context, key string, fields []any, chunks [][]byte) error {
	_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, fields...)
		p.PExpire(ctx, key, pendingTTL)
		return nil
	})
	if err != nil {
		return err
	}
	for start := 0; start < len(chunks); start += chunksPerTrip {
		batch := chunks[start:min(start+chunksPerTrip, len(chunks))]
		_, err := r.client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, c := range batch {
				p.HSet(ctx, key, chunkField(start+i), c)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// discardScript deletes a version's hash unless the pointer ever moved to
// it: after a lost reply the flip may have happened after all.
//
//	KEYS[1] the version's hash
var discardScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], 'published') == 0 then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// discard deletes a version that will never become current; failing that,
// its TTL removes it.
func (r *Redis) discard(ctx context.Context, key string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if err := discardScript.Run(ctx, r.client, []string{key}).Err(); err != nil && !errors.Is(err, redis.Nil) {
		r.log.Warn("could not delete an unpublished version; it expires on its own", "key", key, "ttl", pendingTTL, "error", err)
	}
}
