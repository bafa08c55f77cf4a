package snapshot

import (
	"slices"
	"sync"
)

// indexes holds the snapshot's indexes, each built on first use (or by
// BuildIndexes) and then shared by every reader, including the snapshots
// Refreshed returns. Their number is fixed by the filter names and their
// size by the snapshot's data, never by what queries name: a query on a tag
// key no endpoint has reads the tag index and finds nothing.
//
// Endpoint ids need no index: endpoints are sorted by id, so a binary search
// finds them.
type indexes struct {
	attrs [len(indexedAttributes)]lazyIndex
	tags  struct {
		once   sync.Once
		keys   postings            // tag-key
		values map[string]postings // tag:<key>, by key
	}
}

// indexedAttributes are the single-valued filter names with an index,
// besides endpoint-id.
var indexedAttributes = [...]string{FilterTransportProtocol, FilterVpcID, FilterStatus, FilterRegion, FilterAccountID}

type lazyIndex struct {
	once sync.Once
	p    postings
}

// postings maps each value of one attribute to the ascending positions
// holding it, all kept in one array: a value's positions are
// positions[span.from:span.to].
type postings struct {
	spans     map[string]span
	positions []int32
}

type span struct{ from, to uint32 }

func (p *postings) get(v string) []int32 {
	sp, ok := p.spans[v]
	if !ok {
		return nil
	}
	return p.positions[sp.from:sp.to:sp.to]
}

// postingsBuilder gathers (value, position) pairs in ascending positions and
// packs them into postings: one map lookup per pair, one more per distinct
// value.
type postingsBuilder struct {
	ids    map[string]int32 // value → its number, in order of appearance
	values []string         // by number
	counts []uint32         // by number
	pairs  []int32          // value number of each pair, in order
	pos    []int32          // position of each pair
}

// newPostingsBuilder returns a builder for about n pairs.
func newPostingsBuilder(n int) *postingsBuilder {
	return &postingsBuilder{ids: map[string]int32{}, pairs: make([]int32, 0, n), pos: make([]int32, 0, n)}
}

// add records that position i holds v and returns v's number.
func (b *postingsBuilder) add(v string, i int) int32 {
	id, ok := b.ids[v]
	if !ok {
		id = int32(len(b.values))
		b.ids[v] = id
		b.values = append(b.values, v)
		b.counts = append(b.counts, 0)
	}
	b.counts[id]++
	b.pairs = append(b.pairs, id)
	b.pos = append(b.pos, int32(i))
	return id
}

func (b *postingsBuilder) build() postings {
	p := postings{spans: make(map[string]span, len(b.values)), positions: make([]int32, len(b.pos))}
	next := make([]uint32, len(b.values)) // where each value's next position goes
	var at uint32
	for id, n := range b.counts {
		next[id] = at
		at += n
	}
	for j, id := range b.pairs {
		p.positions[next[id]] = b.pos[j]
		next[id]++
	}
	for id, v := range b.values {
		p.spans[v] = span{from: next[id] - b.counts[id], to: next[id]}
	}
	return p
}

// attrIndex returns the postings of a name of indexedAttributes, building
// them on first use.
func (s *Snapshot) attrIndex(name string) *postings {
	a := slices.Index(indexedAttributes[:], name)
	if a < 0 {
		return nil
	}
	l := &s.idx.attrs[a]
	l.once.Do(func() {
		b := newPostingsBuilder(len(s.endpoints))
		for i := range s.endpoints {
			if v, ok := s.endpoints[i].attribute(name); ok {
				b.add(v, i)
			}
		}
		l.p = b.build()
	})
	return &l.p
}

// tagIndex returns the tag-key postings and the tag:<key> postings by key,
// building them on first use.
func (s *Snapshot) tagIndex() (keys *postings, values map[string]postings) {
	t := &s.idx.tags
	t.once.Do(func() {
		kb := newPostingsBuilder(len(s.endpoints))
		var vb []*postingsBuilder // by key number
		for i := range s.endpoints {
			for _, tg := range s.endpoints[i].tags {
				k := kb.add(tg.key, i)
				if int(k) == len(vb) {
					vb = append(vb, newPostingsBuilder(0))
				}
				vb[k].add(tg.value, i)
			}
		}
		t.keys = kb.build()
		t.values = make(map[string]postings, len(vb))
		for k, b := range vb {
			t.values[kb.values[k]] = b.build()
		}
	})
	return &t.keys, t.values
}

// BuildIndexes builds every index the snapshot's queries use, so that no
// query pays for one. Without it each is built by the first query that
// needs it. It is safe to call concurrently with queries.
func (s *Snapshot) BuildIndexes() {
	if len(s.endpoints) < parallelMin {
		for _, name := range indexedAttributes {
			s.attrIndex(name)
		}
		s.tagIndex()
		return
	}
	// The tags are about half the work, the attributes the other half.
	var wg sync.WaitGroup
	wg.Go(func() { s.tagIndex() })
	for _, name := range indexedAttributes {
		s.attrIndex(name)
	}
	wg.Wait()
}

// lookup returns the ascending positions whose attribute name (an indexed
// attribute, tag-key or tag:<key> as f names it) equals v.
func (s *Snapshot) lookup(f *compiledFilter, v string) []int32 {
	switch {
	case f.tagKey != "":
		_, values := s.tagIndex()
		p, ok := values[f.tagKey]
		if !ok {
			return nil
		}
		return p.get(v)
	case f.name == FilterTagKey:
		keys, _ := s.tagIndex()
		return keys.get(v)
	case f.name == FilterEndpointID:
		return s.positionsOfID(v)
	}
	return s.attrIndex(f.name).get(v)
}

// positionsOfID returns the ascending positions holding id.
func (s *Snapshot) positionsOfID(id string) []int32 {
	var out []int32
	for i := s.search(sortKey{id: id}); i < len(s.endpoints) && s.endpoints[i].id == id; i++ {
		out = append(out, int32(i))
	}
	return out
}
