package ec2sim_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/vpnfacade/vpnfacade/ec2sim"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

func TestGenerateIsDeterministic(t *testing.T) {
	opts := ec2sim.GenerateOptions{Count: 50, Seed: 42, Regions: []string{"eu-west-1", "us-east-1"}, Accounts: []string{accountA, accountB}}
	a, err := ec2sim.Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ec2sim.Generate(opts)
	for i := range a {
		if !proto.Equal(a[i], b[i]) {
			t.Fatalf("endpoint %d differs between two runs with the same seed", i)
		}
	}
	opts.Seed = 43
	c, _ := ec2sim.Generate(opts)
	if proto.Equal(a[0], c[0]) {
		t.Error("a different seed gave the same first endpoint")
	}
}

var idPattern = regexp.MustCompile(`^cvpn-endpoint-[0-9a-f]{17}$`)

func TestGeneratedEndpointsAreConsistent(t *testing.T) {
	regions := []string{"eu-west-1", "us-east-1", "ap-southeast-2"}
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 300, Seed: 1, Regions: regions, Accounts: []string{accountA, accountB}})
	if err != nil {
		t.Fatal(err)
	}
	if len(eps) != 300 {
		t.Fatalf("%d endpoints, want 300", len(eps))
	}
	seen := map[string]bool{}
	perPartition := map[string]int{}
	for _, e := range eps {
		id := e.GetClientVpnEndpointId()
		if !idPattern.MatchString(id) || seen[id] {
			t.Errorf("id %q malformed or repeated", id)
		}
		seen[id] = true
		perPartition[e.GetAccountId()+"/"+e.GetRegion()]++
		if !strings.Contains(e.GetDnsName(), id) || !strings.Contains(e.GetDnsName(), e.GetRegion()) {
			t.Errorf("%s: dns name %q does not name the endpoint and its region", id, e.GetDnsName())
		}
		for _, p := range []struct {
			s      *string
			parsed interface{ AsTime() time.Time }
			set    bool
		}{
			{e.CreationTime, e.GetCreationTimeParsed(), e.CreationTimeParsed != nil},
			{e.DeletionTime, e.GetDeletionTimeParsed(), e.DeletionTimeParsed != nil},
		} {
			if p.s == nil {
				if p.set {
					t.Errorf("%s: parsed time without its string", id)
				}
				continue
			}
			layout := "2006-01-02 15:04:05"
			if strings.Contains(*p.s, "T") {
				layout = "2006-01-02T15:04:05"
			}
			want, err := time.Parse(layout, *p.s)
			if err != nil || !p.set || !p.parsed.AsTime().Equal(want) {
				t.Errorf("%s: time %q parsed as %v", id, *p.s, p.parsed.AsTime())
			}
		}
	}
	if len(perPartition) != 6 {
		t.Errorf("endpoints spread over %d partitions, want 6: %v", len(perPartition), perPartition)
	}
	for k, n := range perPartition {
		if n != 50 {
			t.Errorf("partition %s has %d endpoints, want 50", k, n)
		}
	}
}

// TestGeneratedSetUsesEveryField walks the contract's message descriptors:
// every field, at any depth, must be set on some generated endpoint, so the
// wire tests built on generated data exercise all of them.
func TestGeneratedSetUsesEveryField(t *testing.T) {
	eps, err := ec2sim.Generate(ec2sim.GenerateOptions{Count: 100, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	set := map[protoreflect.FullName]bool{}
	var walk func(m protoreflect.Message)
	walk = func(m protoreflect.Message) {
		m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			set[fd.FullName()] = true
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := range v.List().Len() {
					walk(v.List().Get(i).Message())
				}
			case fd.Message() != nil && !fd.IsMap():
				walk(v.Message())
			}
			return true
		})
	}
	for _, e := range eps {
		walk(e.ProtoReflect())
	}
	var all func(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool)
	all = func(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) {
		if seen[md.FullName()] || md.FullName().Parent() == "google.protobuf" {
			return
		}
		seen[md.FullName()] = true
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			if !set[fd.FullName()] {
				t.Errorf("no generated endpoint sets %s", fd.FullName())
			}
			if fd.Message() != nil {
				all(fd.Message(), seen)
			}
		}
	}
	all((&clientvpnv1.ClientVpnEndpoint{}).ProtoReflect().Descriptor(), map[protoreflect.FullName]bool{})

	// And the variety the wire tests rely on.
	var deleted, unrecognized, emptyDescription, special, unicode, noTags, spaceTime, tTime bool
	for _, e := range eps {
		deleted = deleted || e.GetStatus().GetCode() == clientvpnv1.ClientVpnEndpointStatusCode_CLIENT_VPN_ENDPOINT_STATUS_CODE_DELETED
		unrecognized = unrecognized || e.GetStatus().GetCodeUnrecognized() == "suspended"
		emptyDescription = emptyDescription || (e.Description != nil && *e.Description == "")
		special = special || strings.ContainsAny(e.GetDescription(), `<>&"'`)
		unicode = unicode || strings.ContainsFunc(e.GetDescription(), func(r rune) bool { return r > 0x7f })
		noTags = noTags || len(e.GetTags()) == 0
		spaceTime = spaceTime || strings.Contains(e.GetCreationTime(), " ")
		tTime = tTime || strings.Contains(e.GetCreationTime(), "T")
	}
	if !deleted || !unrecognized || !emptyDescription || !special || !unicode || !noTags || !spaceTime || !tTime {
		t.Errorf("variety missing: deleted %v, unrecognized status %v, empty description %v, XML specials %v, unicode %v, untagged %v, both time shapes %v %v",
			deleted, unrecognized, emptyDescription, special, unicode, noTags, spaceTime, tTime)
	}
}

func TestGenerateRejectsBadOptions(t *testing.T) {
	for _, opts := range []ec2sim.GenerateOptions{
		{Count: -1},
		{Count: 1, Regions: []string{"EU WEST"}},
		{Count: 1, Accounts: []string{"12345"}},
	} {
		if _, err := ec2sim.Generate(opts); err == nil {
			t.Errorf("Generate(%+v) accepted", opts)
		}
	}
}

func TestLoadFileRoundTrip(t *testing.T) {
	eps, _ := ec2sim.Generate(ec2sim.GenerateOptions{Count: 30, Seed: 5, Regions: []string{"eu-west-1"}, Accounts: []string{accountB}})
	data, err := ec2sim.MarshalEndpointsJSON(eps)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "endpoints.json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ec2sim.LoadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(eps) {
		t.Fatalf("loaded %d endpoints, want %d", len(got), len(eps))
	}
	for i := range eps {
		if !proto.Equal(got[i], eps[i]) {
			t.Errorf("endpoint %d changed through the file", i)
		}
	}

	// The Connect JSON form of a listing loads too, and endpoints without
	// region, account or parsed time are completed by the server.
	resp := `{"clientVpnEndpoints":[{"clientVpnEndpointId":"cvpn-endpoint-0123456789abcdef0","creationTime":"2020-11-13 11:37:27","transportProtocol":"TRANSPORT_PROTOCOL_TCP"}],"nextToken":""}`
	loaded, err := ec2sim.ParseEndpointsJSON([]byte(resp))
	if err != nil || len(loaded) != 1 {
		t.Fatalf("ListClientVpnEndpointsResponse form: %v, %d endpoints", err, len(loaded))
	}
	sim, err := ec2sim.New(ec2sim.Options{Endpoints: loaded, DefaultRegion: "eu-central-1"})
	if err != nil {
		t.Fatal(err)
	}
	stored := sim.Endpoints(ec2sim.DefaultAccount, "eu-central-1")
	if len(stored) != 1 || !stored[0].GetCreationTimeParsed().AsTime().Equal(time.Date(2020, 11, 13, 11, 37, 27, 0, time.UTC)) {
		t.Errorf("loaded endpoint not completed: %v", stored)
	}

	for _, bad := range []string{"", "{", `[{"noSuchField":1}]`, `"text"`} {
		if _, err := ec2sim.ParseEndpointsJSON([]byte(bad)); err == nil {
			t.Errorf("ParseEndpointsJSON(%q) accepted", bad)
		}
	}
	if _, err := ec2sim.LoadFile(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}
