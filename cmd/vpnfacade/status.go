package main

import (
	"context"
	"errors"
	"os"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vpnfacade/vpnfacade/admin"
	"github.com/vpnfacade/vpnfacade/lease"
	"github.com/vpnfacade/vpnfacade/refresher"
	"github.com/vpnfacade/vpnfacade/store"
)

// statusSetup wires the status service: its coordinator, the leader's
// report of its refresher and the leader metric.
type statusSetup struct {
	coord admin.Coordinator
	// serve answers forced refreshes while this process leads; nil alone.
	serve func(context.Context) error
	// publish shares the refresher's reports; nil alone.
	publish func(context.Context, refresher.Status)
}

// report is the refresher's report hook (refresher.WithReport).
func (s *statusSetup) report(ctx context.Context, st refresher.Status) {
	if s.publish != nil {
		s.publish(ctx, st)
	}
}

// open creates the coordinator for the store: replicas on a shared Redis
// coordinate through it; a process alone kicks its own refresher.
func (s *statusSetup) open(cfg *settings, st store.Store, elector lease.Elector, ref *refresher.Refresher, reg prometheus.Registerer) error {
	host, _ := os.Hostname()
	opts := admin.Options{Refresher: ref, Replica: host + "/" + strconv.Itoa(os.Getpid()), MinInterval: cfg.refreshNowMin}
	rs, shared := st.(*store.Redis)
	l, leased := elector.(*lease.Lease)
	switch {
	case shared && leased:
		c, err := admin.NewRedis(admin.RedisOptions{
			Options: opts, Client: rs.Client(), Key: rs.Key,
			LeaseKey: rs.Key("lease"), EpochKey: rs.EpochKey(), Lease: l,
		})
		if err != nil {
			return err
		}
		s.coord, s.serve, s.publish = c, c.Serve, c.Publish
	case !shared:
		c, err := admin.NewLocal(opts)
		if err != nil {
			return err
		}
		s.coord = c
	default:
		return errors.New("status service: a Redis store without its lease")
	}
	return admin.RegisterLeaderMetric(reg, s.coord)
}
