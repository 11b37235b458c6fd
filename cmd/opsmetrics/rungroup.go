package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	oklog "github.com/oklog/run"
)

// runGroup runs a command's components together (oklog/run) and stops them
// all when one stops: at a signal, a component's failure, or a component
// that ends the command (stopping). They stop one after the other, in the
// order they were added, each waited for before the next is stopped, so
// that the group states the shutdown order. A positive timeout bounds the
// whole shutdown; past it the command returns without waiting further.
type runGroup struct {
	g       oklog.Group
	log     *slog.Logger
	timeout time.Duration

	once     sync.Once
	begun    chan struct{} // closed when the shutdown begins
	deadline time.Time
	cause    error // the error that began it
}

func newRunGroup(timeout time.Duration, log *slog.Logger) *runGroup {
	return &runGroup{log: log, timeout: timeout, begun: make(chan struct{})}
}

// errStop is how a component ends the group without failing.
var errStop = errors.New("stop")

// stopping turns a component's normal end into the group's.
func stopping(err error) error {
	if err == nil {
		return errStop
	}
	return err
}

func (g *runGroup) begin(err error) {
	g.once.Do(func() {
		g.cause = err
		if g.timeout > 0 {
			g.deadline = time.Now().Add(g.timeout)
			g.log.Info("shutting down", "timeout", g.timeout)
		}
		close(g.begun)
	})
}

// wait waits for done until the shutdown's deadline.
func (g *runGroup) wait(name string, done <-chan struct{}) {
	var expired <-chan time.Time
	if !g.deadline.IsZero() {
		t := time.NewTimer(time.Until(g.deadline))
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-done:
	case <-expired:
		g.log.Warn("component did not stop within the shutdown timeout", "component", name, "timeout", g.timeout)
	}
}

// add adds a component that runs until its context is done. A component
// that returns nil before that has finished its work and waits; one that
// fails stops the group with its error.
func (g *runGroup) add(name string, runFn func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	g.g.Add(func() error {
		defer close(done)
		err := runFn(ctx)
		switch {
		case errors.Is(err, errStop):
			return err
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("%s: %w", name, err)
		}
		<-ctx.Done()
		return nil
	}, func(err error) {
		g.begin(err)
		cancel()
		g.wait(name, done)
	})
}

// addServer adds an HTTP server: serve until it is shut down, which waits
// for the requests in flight.
func (g *runGroup) addServer(name string, serve func() error, shutdown func(context.Context) error) {
	done := make(chan struct{})
	g.g.Add(func() error {
		defer close(done)
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s: %w", name, err)
		}
		return nil
	}, func(err error) {
		g.begin(err)
		ctx, cancel := context.Background(), func() {}
		if !g.deadline.IsZero() {
			ctx, cancel = context.WithDeadline(ctx, g.deadline)
		}
		defer cancel()
		shutdown(ctx)
		g.wait(name, done)
	})
}

// run runs the group until ctx is done or a component stops it, and
// returns the error that stopped it, if it was a failure.
func (g *runGroup) run(ctx context.Context) error {
	g.add("signal", func(c context.Context) error {
		select {
		case <-ctx.Done():
			return errStop
		case <-c.Done():
			return nil
		}
	})
	result := make(chan error, 1)
	go func() { result <- g.g.Run() }()
	select {
	case err := <-result:
		return failure(err)
	case <-g.begun:
	}
	if g.deadline.IsZero() {
		return failure(<-result)
	}
	// The interrupts wait until the deadline at most; a component that
	// ignores its cancellation beyond it is left behind.
	t := time.NewTimer(time.Until(g.deadline) + time.Second)
	defer t.Stop()
	select {
	case err := <-result:
		return failure(err)
	case <-t.C:
		g.log.Warn("components did not stop within the shutdown timeout; exiting", "timeout", g.timeout)
		return failure(g.cause)
	}
}

func failure(err error) error {
	if errors.Is(err, errStop) {
		return nil
	}
	return err
}
