package bench

import (
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"time"
)

// progressEvery is how often the progress bar is redrawn.
const progressEvery = 250 * time.Millisecond

// progressWidth is the bar's width in cells, and progressMax the most
// characters a line takes: a line that wraps on a narrow terminal could
// not be redrawn in place.
const (
	progressWidth = 20
	progressMax   = 79
)

// progress draws a one-line progress bar of the current phase's meter,
// redrawn in place with a carriage return. It is only made for a
// terminal: the caller passes no writer when the output is piped.
type progress struct {
	w     io.Writer
	title string
	cur   atomic.Pointer[meter]
	quit  chan struct{}
	done  chan struct{}
}

// startProgress starts drawing to w; with a nil w it returns nil, whose
// methods do nothing.
func startProgress(w io.Writer, title string) *progress {
	if w == nil {
		return nil
	}
	p := &progress{w: w, title: title, quit: make(chan struct{}), done: make(chan struct{})}
	go p.loop()
	return p
}

// show makes m the meter drawn.
func (p *progress) show(m *meter) {
	if p != nil {
		p.cur.Store(m)
	}
}

// stop stops drawing and clears the line.
func (p *progress) stop() {
	if p == nil {
		return
	}
	close(p.quit)
	<-p.done
	fmt.Fprint(p.w, "\r\x1b[K")
}

func (p *progress) loop() {
	defer close(p.done)
	t := time.NewTicker(progressEvery)
	defer t.Stop()
	for {
		select {
		case <-p.quit:
			return
		case <-t.C:
			if m := p.cur.Load(); m != nil {
				fmt.Fprint(p.w, "\r\x1b[K"+progressLine(p.title+": "+m.name, m.count(), m.total, time.Since(m.start)))
			}
		}
	}
}

// progressLine is the bar's text, like
// "w1: round trip [########············]  42%  42000/100000  35012/s  1.2s",
// cut to progressMax characters.
func progressLine(name string, done, total int64, elapsed time.Duration) string {
	frac := 0.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	full := int(frac * progressWidth)
	bar := strings.Repeat("#", full) + strings.Repeat("·", progressWidth-full)
	rate := 0.0
	if s := elapsed.Seconds(); s > 0 {
		rate = float64(done) / s
	}
	line := fmt.Sprintf("%s [%s] %3.0f%%  %d/%d  %.0f/s  %.1fs", name, bar, 100*frac, done, total, rate, elapsed.Seconds())
	if r := []rune(line); len(r) > progressMax {
		line = string(r[:progressMax-1]) + "…"
	}
	return line
}
