package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
	"unsafe"

	"github.com/vpnfacade/vpnfacade/snapshot"
)

// A snapshot is stored in Redis as one hash holding meta fields and the
// endpoints in chunks. Each chunk is a run of endpoints, each written as a
// uvarint length followed by the endpoint's protobuf encoding; chunks are
// about chunkBytes long so that no single command or reply is huge, and
// they are written and read a few per round trip.
const (
	snapshotFormat = "1"

	fieldFormat      = "format"
	fieldRefreshedAt = "refreshed_at"
	fieldPartitions  = "partitions"
	fieldCount       = "count"
	fieldChunks      = "chunks"
	fieldEpoch       = "epoch"
	// fieldPublished is set by the publish script when the pointer moves to
	// the snapshot; a snapshot without it was never current.
	fieldPublished = "published"

	chunkBytes     = 256 << 10
	chunksPerTrip  = 16
	chunkFieldName = "chunk:"
	// parallelTrips is how many reads of chunksPerTrip chunks a load runs
	// at once.
	parallelTrips = 4
)

// stringBytes returns the bytes of s without copying them. The caller must
// never modify them: a snapshot only reads its chunks (see
// snapshot.FromWire), and a Go string's bytes are never written, so they
// stay as Redis sent them.
func stringBytes(s string) []byte {
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

func chunkField(i int) string { return chunkFieldName + strconv.Itoa(i) }

// encodeChunks splits the endpoint encodings of s, in order, into chunks
// of about chunkBytes.
func encodeChunks(s *snapshot.Snapshot) [][]byte {
	var chunks [][]byte
	for from := 0; from < s.Len(); {
		var chunk []byte
		chunk, from = s.AppendWire(make([]byte, 0, chunkBytes+chunkBytes/4), from, chunkBytes)
		chunks = append(chunks, chunk)
	}
	return chunks
}

// snapshotMeta is the part of a stored snapshot besides its endpoints.
type snapshotMeta struct {
	refreshedAt time.Time
	partitions  []snapshot.Partition
	count       int
	chunks      int
}

// metaFields returns the hash fields recording m and the writer's epoch.
func (m snapshotMeta) fields(epoch uint64) ([]any, error) {
	parts, err := json.Marshal(m.partitions)
	if err != nil {
		return nil, fmt.Errorf("store: encode partitions: %w", err)
	}
	return []any{
		fieldFormat, snapshotFormat,
		fieldRefreshedAt, m.refreshedAt.Format(time.RFC3339Nano),
		fieldPartitions, parts,
		fieldCount, m.count,
		fieldChunks, m.chunks,
		fieldEpoch, strconv.FormatUint(epoch, 10),
	}, nil
}

var metaFieldNames = []string{fieldFormat, fieldRefreshedAt, fieldPartitions, fieldCount, fieldChunks}

// parseMeta reads the values of metaFieldNames, as HMGET returns them.
func parseMeta(vals []any) (snapshotMeta, error) {
	var s [5]string
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			if i == 0 {
				return snapshotMeta{}, errSnapshotMissing
			}
			return snapshotMeta{}, fmt.Errorf("store: stored snapshot lacks field %q", metaFieldNames[i])
		}
		s[i] = str
	}
	if s[0] != snapshotFormat {
		return snapshotMeta{}, fmt.Errorf("store: stored snapshot has format %q, this build reads %q", s[0], snapshotFormat)
	}
	var m snapshotMeta
	var err error
	if m.refreshedAt, err = time.Parse(time.RFC3339Nano, s[1]); err != nil {
		return m, fmt.Errorf("store: stored snapshot refreshed_at: %w", err)
	}
	if err := json.Unmarshal([]byte(s[2]), &m.partitions); err != nil {
		return m, fmt.Errorf("store: stored snapshot partitions: %w", err)
	}
	if m.count, err = strconv.Atoi(s[3]); err != nil || m.count < 0 {
		return m, fmt.Errorf("store: stored snapshot count %q is not a count", s[3])
	}
	if m.chunks, err = strconv.Atoi(s[4]); err != nil || m.chunks < 0 {
		return m, fmt.Errorf("store: stored snapshot chunks %q is not a count", s[4])
	}
	return m, nil
}
