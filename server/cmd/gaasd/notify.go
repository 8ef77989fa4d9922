package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/gaas-io/gaas/gaas"
	"github.com/gaas-io/gaas/server/webhook"
	"github.com/gaas-io/gaas/server/worker"
	"github.com/gaas-io/gaas/store"
)

// notifyConfig is how gaasd sends notifications: the flags below.
type notifyConfig struct {
	allowPrivate bool
	timeout      time.Duration
}

// notifyFlags adds the flags of notifications to fs: what fills c, and
// the store's thresholds and expiry notice in opts.
func notifyFlags(fs *flag.FlagSet, c *notifyConfig, opts *store.Options) {
	fs.BoolVar(&c.allowPrivate, "webhook-allow-private", false,
		"let webhook endpoints be in loopback, private or link-local networks; checked at each connection, after DNS. "+
			"Off, such endpoints are refused, so that a webhook cannot reach inside the network gaasd runs in")
	fs.DurationVar(&c.timeout, "webhook-timeout", 10*time.Second, "the longest a webhook endpoint may take to answer one delivery")
	fs.DurationVar(&opts.ExpiringWithin, "expiring-within", store.DefaultExpiringWithin,
		"an allocation holding credits that ends within this long is an allocation.expiring event")
	fs.Func("thresholds", "`percentages` of an allocation used, comma separated, whose crossing is an allocation.threshold_crossed event; "+
		"\"none\" for none (default 80,100)", func(s string) error {
		ts, err := parseThresholds(s)
		opts.Thresholds = ts
		return err
	})
}

// parseThresholds reads -thresholds.
func parseThresholds(s string) ([]int, error) {
	ts := []int{}
	if strings.TrimSpace(s) == "none" {
		return ts, nil
	}
	for _, f := range strings.Split(s, ",") {
		t, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q is not a whole number", f)
		}
		ts = append(ts, t)
	}
	if err := gaas.ValidThresholds(ts); err != nil {
		return nil, err
	}
	return ts, nil
}

// notifyTasks are the background worker's tasks of notifications:
// sending due webhook deliveries, and noting allocations about to expire.
func notifyTasks(logger *slog.Logger, db *store.DB, c notifyConfig, userAgent string) []worker.Task {
	sender := webhook.New(db.Webhooks, webhook.Config{AllowPrivate: c.allowPrivate, Timeout: c.timeout, Logger: logger, UserAgent: userAgent})
	return []worker.Task{{Name: "deliver-webhooks", Run: func(ctx context.Context) error {
		_, err := sender.RunOnce(ctx)
		return err
	}}, {Name: "notify-expiring", Run: func(ctx context.Context) error {
		_, err := db.Upkeep.NotifyExpiring(ctx)
		return err
	}}}
}
