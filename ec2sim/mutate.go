package ec2sim

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// Mutate makes n random changes now, each adding, modifying or deleting one
// endpoint in a partition that holds data (or adding one to the default
// partition when none does), and reports them. The choices follow the
// server's seed. Endpoints named by KeepEndpoints are never deleted.
func (s *Server) Mutate(n int) Mutation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mutateLocked(n)
}

// KeepEndpoints makes mutations never delete the endpoints with these ids
// (they may still be modified), so that an id a document or a demo names
// exists for as long as the server runs. Each call adds to the kept set.
func (s *Server) KeepEndpoints(ids ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.kept == nil {
		s.kept = make(map[string]bool, len(ids))
	}
	for _, id := range ids {
		s.kept[id] = true
	}
}

// mutateIfDueLocked applies the mutations due at now. The caller holds s.mu.
func (s *Server) mutateIfDueLocked(now time.Time) {
	if s.mutateEvery <= 0 {
		return
	}
	elapsed := now.Sub(s.lastMutation)
	if elapsed < s.mutateEvery {
		return
	}
	rounds := elapsed / s.mutateEvery
	s.lastMutation = s.lastMutation.Add(rounds * s.mutateEvery)
	s.mutateLocked(int(min(int64(rounds)*int64(s.mutateCount), maxMutationsPerRequest)))
}

// mutateLocked makes n changes. The caller holds s.mu.
func (s *Server) mutateLocked(n int) Mutation {
	var m Mutation
	// Work on a sorted list of (partition, id) so that a seed gives the
	// same changes whatever the map order.
	type ref struct {
		key PartitionKey
		id  string
	}
	var refs []ref
	for _, key := range s.sortedPartitionsLocked() {
		ids := make([]string, 0, len(s.parts[key].endpoints))
		for id := range s.parts[key].endpoints {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			refs = append(refs, ref{key, id})
		}
	}
	for range n {
		op := s.rng.IntN(3)
		if len(refs) == 0 {
			op = 0
		}
		switch op {
		case 0: // add, to the partition of a random endpoint
			key := PartitionKey{AccountID: s.defaultAccount, Region: s.defaultRegion}
			if len(refs) > 0 {
				key = refs[s.rng.IntN(len(refs))].key
			}
			e := s.newEndpointLocked(key)
			s.putLocked(key, e)
			refs = append(refs, ref{key, e.GetClientVpnEndpointId()})
			m.Added = append(m.Added, key.String()+"/"+e.GetClientVpnEndpointId())
		case 1: // modify
			r := refs[s.rng.IntN(len(refs))]
			e := proto.CloneOf(s.parts[r.key].endpoints[r.id])
			s.modifyLocked(e)
			s.putLocked(r.key, e)
			m.Modified = append(m.Modified, r.key.String()+"/"+r.id)
		default: // delete, unless the endpoint is kept: then modify it
			i := s.rng.IntN(len(refs))
			r := refs[i]
			if s.kept[r.id] {
				e := proto.CloneOf(s.parts[r.key].endpoints[r.id])
				s.modifyLocked(e)
				s.putLocked(r.key, e)
				m.Modified = append(m.Modified, r.key.String()+"/"+r.id)
				continue
			}
			p := s.parts[r.key]
			delete(p.endpoints, r.id)
			p.changed()
			refs = slices.Delete(refs, i, i+1)
			m.Deleted = append(m.Deleted, r.key.String()+"/"+r.id)
		}
	}
	return m
}

// newEndpointLocked generates an endpoint whose id is new in the partition.
// The caller holds s.mu.
func (s *Server) newEndpointLocked(key PartitionKey) *clientvpnv1.ClientVpnEndpoint {
	for {
		e := s.gen.endpoint(s.genIndex, key.AccountID, key.Region)
		s.genIndex++
		if s.parts[key] == nil || s.parts[key].endpoints[e.GetClientVpnEndpointId()] == nil {
			return e
		}
	}
}

// modifyLocked changes an endpoint the way its owner might: a revision tag
// always (so the change is visible), plus one of description, status, split
// tunnel or session timeout. The caller holds s.mu.
func (s *Server) modifyLocked(e *clientvpnv1.ClientVpnEndpoint) {
	s.genIndex++
	revision := fmt.Sprintf("%d", s.genIndex)
	found := false
	for _, t := range e.Tags {
		if t.GetKey() == "Revision" {
			t.Value = proto.String(revision)
			found = true
		}
	}
	if !found {
		e.Tags = append(e.Tags, &clientvpnv1.Tag{Key: proto.String("Revision"), Value: proto.String(revision)})
	}
	switch s.rng.IntN(4) {
	case 0:
		d := strings.TrimSuffix(e.GetDescription(), " (edited)")
		e.Description = proto.String(d + " (edited)")
	case 1:
		st := &clientvpnv1.ClientVpnEndpointStatus{Code: clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_AVAILABLE}
		if e.GetStatus().GetCode() == st.Code {
			st.Code = clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_PENDING_ASSOCIATE
		}
		e.Status = st
	case 2:
		e.SplitTunnel = proto.Bool(!e.GetSplitTunnel())
	default:
		e.SessionTimeoutHours = proto.Int32(8 + (e.GetSessionTimeoutHours()+2)%18)
	}
}
