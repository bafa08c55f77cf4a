// Command vpnfacade serves a cached copy of every AWS Client VPN endpoint of
// the configured accounts and regions over Connect, gRPC, gRPC-Web and the
// EC2 Query API, refreshing it in the background.
//
// It only wires the packages together: see --help for the settings.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "access" {
		if err := runAccessCommand(os.Args[2:], os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "vpnfacade:", err)
			os.Exit(2)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// healthcheck subcommand (healthcheck.go): `vpnfacade healthcheck`.
	if len(os.Args) > 1 && os.Args[1] == healthcheckCommand {
		code := runHealthcheck(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	// end healthcheck subcommand
	m := NewMain(os.Stderr, os.Getenv)
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "vpnfacade:", err)
		os.Exit(2)
	}
	// SIGHUP reloads the access file (it is also reloaded when it changes).
	// It is caught from before the start, where its default action would end
	// the process, and handled once the access file is loaded.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	err := m.Run(ctx)
	go func() {
		for range hup {
			if err := m.ReloadAccess(); err != nil {
				fmt.Fprintln(os.Stderr, "vpnfacade: SIGHUP:", err)
			}
		}
	}()
	if err == nil {
		select {
		case <-ctx.Done():
		case err = <-m.Failed():
		}
	}
	if cerr := m.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "vpnfacade:", err)
		os.Exit(1)
	}
}
