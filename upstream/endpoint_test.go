package upstream

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/vpnfacade/vpnfacade"
	clientvpnv1 "github.com/vpnfacade/vpnfacade/gen/clientvpn/v1"
)

// fillMode says what fillSDK puts in each field.
type fillMode int

const (
	// fillKnown: distinct non-zero values, enums from the SDK's known values.
	fillKnown fillMode = iota
	// fillUnknown: like fillKnown, but enums spelled as no AWS value is.
	fillUnknown
	// fillZero: every pointer set to its type's zero value ("", false, 0):
	// present but empty, which must stay distinguishable from absent.
	fillZero
)

// fillSDK populates every exported field of the struct v points into by
// reflection, so that fields a newer SDK adds are filled (and then checked)
// without anyone editing this test. It fails on a field kind it does not
// know, so a new kind of field cannot slip through unmapped.
func fillSDK(t *testing.T, v reflect.Value, mode fillMode, n *int, path string) {
	t.Helper()
	*n++
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fillSDK(t, v.Elem(), mode, n, path)
	case reflect.Struct:
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if !f.IsExported() {
				continue
			}
			fillSDK(t, v.Field(i), mode, n, path+"."+f.Name)
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fillSDK(t, s.Index(i), mode, n, fmt.Sprintf("%s[%d]", path, i))
		}
		v.Set(s)
	case reflect.String:
		values := v.Addr().MethodByName("Values")
		switch {
		case !values.IsValid(): // a plain string
			if mode != fillZero {
				v.SetString(fmt.Sprintf("%s-%d", path, *n))
			}
		case mode == fillUnknown:
			v.SetString(fmt.Sprintf("future-value-%d", *n))
		default: // an SDK enum: one of its known values, a different one each time
			known := values.Call(nil)[0]
			if known.Len() == 0 {
				t.Fatalf("%s: SDK enum %s lists no values", path, v.Type())
			}
			v.Set(known.Index(*n % known.Len()))
		}
	case reflect.Bool:
		v.SetBool(mode != fillZero)
	case reflect.Int32:
		if mode != fillZero {
			v.SetInt(int64(*n))
		}
	default:
		t.Fatalf("%s: SDK field of kind %s: teach fillSDK and compareSDK about it", path, v.Kind())
	}
}

// protoName turns an SDK field name into the contract's field name:
// ClientVpnEndpointId → client_vpn_endpoint_id.
func protoName(goName string) protoreflect.Name {
	var b strings.Builder
	for i, r := range goName {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return protoreflect.Name(b.String())
}

// compareSDK checks that msg carries exactly what the SDK struct sdk holds,
// field for field and recursively: presence, values, order, and AWS's enum
// spellings (known or not). It also fails when msg has a field that no SDK
// field fills, other than the facade's own (region, account_id, *_parsed,
// *_unrecognized).
func compareSDK(t *testing.T, path string, sdk reflect.Value, msg protoreflect.Message) {
	t.Helper()
	fields := msg.Descriptor().Fields()
	covered := map[protoreflect.Name]bool{}
	for i := range sdk.NumField() {
		f := sdk.Type().Field(i)
		if !f.IsExported() {
			continue
		}
		name := protoName(f.Name)
		fd := fields.ByName(name)
		p := path + "." + f.Name
		if fd == nil {
			t.Errorf("%s: the SDK field has no counterpart %s in %s", p, name, msg.Descriptor().FullName())
			continue
		}
		covered[name] = true
		compareField(t, p, sdk.Field(i), msg, fd)
	}
	for i := range fields.Len() {
		fd := fields.Get(i)
		n := string(fd.Name())
		if covered[fd.Name()] || n == "region" || n == "account_id" ||
			strings.HasSuffix(n, "_parsed") || strings.HasSuffix(n, "_unrecognized") {
			continue
		}
		t.Errorf("%s: %s.%s is filled by no SDK field", path, msg.Descriptor().FullName(), n)
	}
}

func compareField(t *testing.T, p string, v reflect.Value, msg protoreflect.Message, fd protoreflect.FieldDescriptor) {
	t.Helper()
	switch {
	case v.Kind() == reflect.Pointer && v.Type().Elem().Kind() == reflect.Struct:
		if v.IsNil() {
			if msg.Has(fd) {
				t.Errorf("%s: absent in the SDK, set in the message", p)
			}
			return
		}
		if !msg.Has(fd) {
			t.Errorf("%s: set in the SDK, absent in the message", p)
			return
		}
		compareSDK(t, p, v.Elem(), msg.Get(fd).Message())
	case v.Kind() == reflect.Pointer:
		if v.IsNil() {
			if msg.Has(fd) {
				t.Errorf("%s: absent in the SDK, set in the message", p)
			}
			return
		}
		if !msg.Has(fd) {
			t.Errorf("%s: set in the SDK (%v), absent in the message", p, v.Elem())
			return
		}
		if got, want := msg.Get(fd).Interface(), v.Elem().Interface(); got != want {
			t.Errorf("%s: message has %v, SDK has %v", p, got, want)
		}
	case v.Kind() == reflect.String: // an SDK enum; "" means AWS sent nothing
		unrec := msg.Descriptor().Fields().ByName(fd.Name() + "_unrecognized")
		if unrec == nil {
			t.Fatalf("%s: enum field %s has no _unrecognized sibling", p, fd.Name())
		}
		et, err := protoregistry.GlobalTypes.FindEnumByName(fd.Enum().FullName())
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var u *string
		if msg.Has(unrec) {
			s := msg.Get(unrec).String()
			u = &s
		}
		got, ok := vpnfacade.EnumString(et.New(msg.Get(fd).Enum()), u)
		if want := v.String(); got != want || ok != (want != "") {
			t.Errorf("%s: message spells %q (present %v), SDK has %q", p, got, ok, want)
		}
		if msg.Get(fd).Enum() != 0 && u != nil {
			t.Errorf("%s: both the enum and its _unrecognized sibling are set", p)
		}
	case v.Kind() == reflect.Slice:
		list := msg.Get(fd).List()
		if list.Len() != v.Len() {
			t.Errorf("%s: message has %d items, SDK has %d", p, list.Len(), v.Len())
			return
		}
		for i := range v.Len() {
			ip := fmt.Sprintf("%s[%d]", p, i)
			if fd.Kind() == protoreflect.MessageKind {
				compareSDK(t, ip, v.Index(i), list.Get(i).Message())
			} else if got, want := list.Get(i).Interface(), v.Index(i).Interface(); got != want {
				t.Errorf("%s: message has %v, SDK has %v", ip, got, want)
			}
		}
	default:
		t.Fatalf("%s: SDK field of kind %s: teach compareField about it", p, v.Kind())
	}
}

func TestEndpointFromSDKMapsEveryField(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode fillMode
	}{{"known values", fillKnown}, {"unknown enum spellings", fillUnknown}, {"present but empty", fillZero}} {
		t.Run(tc.name, func(t *testing.T) {
			var e types.ClientVpnEndpoint
			n := 0
			fillSDK(t, reflect.ValueOf(&e).Elem(), tc.mode, &n, "ClientVpnEndpoint")
			if tc.mode != fillZero {
				e.CreationTime = new("2020-11-13 11:37:27")
				e.DeletionTime = new("2021-01-02T03:04:05.5+02:00")
			}

			got := EndpointFromSDK(e, "123456789012", "eu-west-1")

			compareSDK(t, "ClientVpnEndpoint", reflect.ValueOf(e), got.ProtoReflect())
			if got.GetRegion() != "eu-west-1" || got.GetAccountId() != "123456789012" {
				t.Errorf("partition = %q/%q, want eu-west-1/123456789012", got.GetRegion(), got.GetAccountId())
			}
			if tc.mode == fillZero {
				if got.CreationTimeParsed != nil || got.DeletionTimeParsed != nil {
					t.Errorf("empty times parsed: %v, %v", got.CreationTimeParsed, got.DeletionTimeParsed)
				}
				return
			}
			if want := time.Date(2020, 11, 13, 11, 37, 27, 0, time.UTC); !got.GetCreationTimeParsed().AsTime().Equal(want) {
				t.Errorf("creation_time_parsed = %v, want %v", got.GetCreationTimeParsed().AsTime(), want)
			}
			if want := time.Date(2021, 1, 2, 1, 4, 5, 5e8, time.UTC); !got.GetDeletionTimeParsed().AsTime().Equal(want) {
				t.Errorf("deletion_time_parsed = %v, want %v", got.GetDeletionTimeParsed().AsTime(), want)
			}
			if tc.mode == fillKnown && got.GetTransportProtocol() == clientvpnv1.TransportProtocol_TRANSPORT_PROTOCOL_UNSPECIFIED {
				t.Errorf("known transport protocol %q left unspecified", e.TransportProtocol)
			}
		})
	}
}

func TestEndpointFromSDKKeepsAbsentAbsent(t *testing.T) {
	got := EndpointFromSDK(types.ClientVpnEndpoint{}, "123456789012", "us-east-1")
	want := &clientvpnv1.ClientVpnEndpoint{AccountId: "123456789012", Region: "us-east-1"}
	if !proto.Equal(got, want) {
		t.Errorf("EndpointFromSDK(empty) = %v, want only the partition set", got)
	}
}

func TestEndpointFromSDKSharesNoMemory(t *testing.T) {
	e := types.ClientVpnEndpoint{
		Description: new("before"),
		DnsServers:  []string{"10.0.0.2"},
		Tags:        []types.Tag{{Key: new("Name"), Value: new("before")}},
	}
	got := EndpointFromSDK(e, "123456789012", "us-east-1")
	*e.Description = "after"
	e.DnsServers[0] = "after"
	*e.Tags[0].Value = "after"
	if got.GetDescription() != "before" || got.GetDnsServers()[0] != "10.0.0.2" || got.GetTags()[0].GetValue() != "before" {
		t.Errorf("changing the SDK struct changed the message: %v", got)
	}
}

func TestEndpointFromSDKLeavesUnparsableTimesUnparsed(t *testing.T) {
	got := EndpointFromSDK(types.ClientVpnEndpoint{CreationTime: new("sometime in 2020")}, "123456789012", "us-east-1")
	if got.GetCreationTime() != "sometime in 2020" || got.CreationTimeParsed != nil {
		t.Errorf("creation_time = %q, parsed = %v; want the string verbatim and no parsed time", got.GetCreationTime(), got.CreationTimeParsed)
	}
}
