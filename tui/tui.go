package tui

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// Config says what the UI shows and where.
type Config struct {
	Source   string        // the capture's name for humans, e.g. "lo" or "capture.pcap"
	Interval time.Duration // refresh cadence (wall clock); 0 means 250ms

	// Snapshots is the only link to the capture: every Interval the UI calls
	// Request and then reads Latest (nil until the first report). Both must
	// be safe to call from another goroutine and must not block;
	// *analyze.Snapshots is the intended implementation.
	Snapshots interface {
		Request()
		Latest() *analyze.Report
	}

	Replay *Replay      // nil for live capture
	Screen tcell.Screen // nil means the real terminal; tests pass a tcell.SimulationScreen
}

// Replay lets the UI change the pace of a file replay and know the file has
// ended. The functions are called from the UI's goroutines and must be safe
// for concurrent use (an atomic value behind them is enough).
type Replay struct {
	Speed    func() float64 // current pace factor: 1 is real time, 2 twice as fast, 0 as fast as possible
	SetSpeed func(float64)
	Done     func() bool // the file is fully read: the UI keeps showing the final state until q
}

// DefaultInterval is the refresh cadence when Config.Interval is 0.
const DefaultInterval = 250 * time.Millisecond

// Run shows the UI until the user quits (q or Ctrl-C) or ctx is done. It
// returns nil then, or the terminal's error.
func Run(ctx context.Context, cfg Config) error {
	if cfg.Snapshots == nil {
		return errors.New("tui: Config.Snapshots is nil")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	return newUI(cfg).run(ctx, nil)
}

// run runs the application. tick replaces the refresh ticker when not nil
// (tests drive refreshes with it).
//
// Goroutines: tview's event loop owns every view and all UI state. The
// refresher asks for a snapshot every tick and hands it to the event loop
// with QueueUpdateDraw; it never touches a view itself. Quitting stops the
// refresher first and only then the application, so the refresher is never
// left waiting on an event loop that has ended.
func (u *ui) run(ctx context.Context, tick <-chan time.Time) error {
	if tick == nil {
		t := time.NewTicker(u.cfg.Interval)
		defer t.Stop()
		tick = t.C
	}
	started := make(chan struct{}) // closed at the first draw: the event loop is about to run
	var startOnce sync.Once
	u.app.SetBeforeDrawFunc(func(s tcell.Screen) bool {
		startOnce.Do(func() { close(started) })
		u.resize(s.Size())
		return false
	})
	runDone := make(chan struct{})
	refresherDone := make(chan struct{})

	go func() { // refresher
		defer close(refresherDone)
		select {
		case <-started:
		case <-u.quitCh:
			return
		case <-runDone:
			return
		}
		u.refresh(tick)
	}()
	go func() { // cancellation
		select {
		case <-ctx.Done():
			u.quit()
		case <-runDone:
		}
	}()
	go func() { // stopper
		select {
		case <-u.quitCh:
		case <-runDone:
			return
		}
		<-refresherDone
		select {
		case <-started:
			u.app.Stop()
		case <-runDone:
		}
	}()

	u.cfg.Snapshots.Request() // so that the first tick finds a report
	err := u.app.Run()
	close(runDone)
	// If tview ended on its own (a terminal error), the refresher may be
	// stuck in QueueUpdateDraw for good; it holds nothing but itself.
	u.quit()
	return err
}

// refresh is the refresher's loop.
func (u *ui) refresh(tick <-chan time.Time) {
	for {
		select {
		case <-u.quitCh:
			return
		case <-tick:
		}
		u.cfg.Snapshots.Request()
		rep := u.cfg.Snapshots.Latest()
		ended := false
		if r := u.cfg.Replay; r != nil && r.Done != nil {
			ended = r.Done()
		}
		u.app.QueueUpdateDraw(func() { u.receive(rep, ended) })
		if u.applied != nil {
			select {
			case u.applied <- struct{}{}:
			case <-u.quitCh:
				return
			}
		}
	}
}

// quit asks Run to end; safe from any goroutine, any number of times.
func (u *ui) quit() { u.quitOnce.Do(func() { close(u.quitCh) }) }
