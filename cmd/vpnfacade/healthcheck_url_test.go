package main

import (
	"strings"
	"testing"
)

func TestHealthcheckURL(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		addr, listen, tlsCert string
		want                  string
	}{
		{want: "http://127.0.0.1:8080"},
		{listen: ":9090", want: "http://127.0.0.1:9090"},
		{listen: "0.0.0.0:9090", want: "http://127.0.0.1:9090"},
		{listen: "[::]:9090", want: "http://[::1]:9090"},
		{listen: "10.1.2.3:9090", want: "http://10.1.2.3:9090"},
		{listen: ":8443", tlsCert: "/certs/tls.crt", want: "https://127.0.0.1:8443"},
		{addr: "localhost:7000", listen: ":9090", want: "http://localhost:7000"},
		{addr: "https://vpnfacade.internal:443/", want: "https://vpnfacade.internal:443"},
		{addr: "http://[::1]:8080", tlsCert: "x", want: "http://[::1]:8080"},
	} {
		env := map[string]string{"VPNFACADE_LISTEN": c.listen, "VPNFACADE_TLS_CERT": c.tlsCert}
		got, err := healthcheckURL(c.addr, func(k string) string { return env[k] })
		if err != nil || got != c.want {
			t.Errorf("healthcheckURL(%q) with %v = %q, %v; want %q", c.addr, env, got, err, c.want)
		}
	}
	for _, c := range []struct{ addr, listen, wantErr string }{
		{listen: "8080", wantErr: "VPNFACADE_LISTEN"},
		{addr: "grpc://localhost:8080", wantErr: "http or https"},
		{addr: "http://localhost:8080/x", wantErr: "scheme://host:port"},
		{addr: "localhost", wantErr: "--addr"},
	} {
		env := map[string]string{"VPNFACADE_LISTEN": c.listen}
		_, err := healthcheckURL(c.addr, func(k string) string { return env[k] })
		if err == nil || !strings.Contains(err.Error(), c.wantErr) {
			t.Errorf("healthcheckURL(%q) with listen %q: error %v, want one naming %q", c.addr, c.listen, err, c.wantErr)
		}
	}
}
