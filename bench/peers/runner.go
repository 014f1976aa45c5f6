package main

import (
	"context"
	"fmt"
	"io"
)

// runner runs the measurements one after another (never two at once: they
// share the machine's cores and disk) and collects their figures.
type runner struct {
	p   Params
	o   options
	tmp string
	log io.Writer
	r   *report
	// round is the current round, from 1 (see Params.Rounds).
	round int
}

// all runs courier's side, then each selected peer, starting and stopping
// every server itself.
func (u *runner) all(ctx context.Context) {
	nats, river, asynq := u.p.Runs("nats"), u.p.Runs("river"), u.p.Runs("asynq")
	if nats {
		u.courier(ctx, "courier-w1-batched", courierRun{system: "courier (embedded store)", workload: "w1", mode: "batched",
			args: courierArgs("w1", u.p, u.p.Batch, u.p.Count, "")})
		// The same with each receive carrying the previous batch's acks, as
		// a client using the whole API (the SDK's Worker) works: a row for
		// context, next to the one the target is judged on.
		u.courier(ctx, "courier-w1-batched-carried", courierRun{system: "courier (embedded store, acks carried by receives)", workload: "w1", mode: "batched",
			args: append(courierArgs("w1", u.p, u.p.Batch, u.p.Count, ""), "--carry-acks")})
		u.courier(ctx, "courier-w1-per-message", courierRun{system: "courier (embedded store)", workload: "w1", mode: "per-message",
			args: courierArgs("w1", u.p, 1, u.p.PerMessageCount, "")})
		for _, m := range natsModes {
			u.natsMode(ctx, m)
		}
	}
	if river || asynq {
		u.courier(ctx, "courier-w2-pebble", courierRun{system: "courier (embedded store)", workload: "w2", mode: "burn-down",
			args: courierArgs("w2", u.p, u.p.Batch, u.p.Count, "")})
		// The same with task records (state, result, kept after the end), the
		// nearer match of River's job rows, which stay as completed.
		u.courier(ctx, "courier-w2-pebble-tasks", courierRun{system: "courier (embedded store)", workload: "w2", mode: "burn-down, tasks",
			args: append(courierArgs("w2", u.p, u.p.Batch, u.p.Count, ""), "--tasks")})
	}
	if river {
		u.postgres(ctx)
	}
	if asynq {
		for _, m := range asynqModes {
			u.asynqMode(ctx, m)
		}
	}
}

// add records a figure under id and says so on the log.
func (u *runner) add(id string, f Figure) {
	f.ID, f.Round = id, u.round
	u.r.Figures = append(u.r.Figures, f)
	if f.Err != "" {
		fmt.Fprintf(u.log, "peers: round %d: %-28s failed: %s\n", u.round, id, f.Err)
		return
	}
	fmt.Fprintf(u.log, "peers: round %d: %-28s %10.0f /s  (%d in %.2fs)\n", u.round, id, f.PerSecond, f.Count, f.Seconds)
}

// measure runs one measurement under the run's time bound.
func (u *runner) measure(ctx context.Context, id string, m func(context.Context) Figure) {
	fmt.Fprintf(u.log, "peers: round %d: %-28s running\n", u.round, id)
	ctx, cancel := context.WithTimeout(ctx, u.o.timeout)
	defer cancel()
	u.add(id, m(ctx))
}

func (u *runner) courier(ctx context.Context, id string, r courierRun) {
	if u.o.courier == "" {
		u.add(id, failed(r.system, r.workload, r.mode, errNoCourier))
		return
	}
	u.measure(ctx, id, func(ctx context.Context) Figure { return runCourier(ctx, u.o.courier, r) })
}

// natsMode runs W1 batched and per-message on a fresh server.
func (u *runner) natsMode(ctx context.Context, m natsMode) {
	ids := []string{m.name + "-w1-batched", m.name + "-w1-per-message"}
	s, err := startNATS(u.tmp, m)
	if err != nil {
		for i, id := range ids {
			u.add(id, failed(m.system, "w1", []string{"batched", "per-message"}[i], err))
		}
		return
	}
	defer stopNATS(s, u.tmp, m)
	url := s.ClientURL()
	u.measure(ctx, ids[0], func(ctx context.Context) Figure {
		return withDurability(runNATSW1(ctx, url, u.p, u.p.Batch, u.p.Count, m.system, "batched"), m.durability)
	})
	u.measure(ctx, ids[1], func(ctx context.Context) Figure {
		return withDurability(runNATSW1(ctx, url, u.p, 1, u.p.PerMessageCount, m.system, "per-message"), m.durability)
	})
}

// postgres runs courier's W2 on PostgreSQL and River's W2 on one server,
// each in its own database. The server is new each round, and the first
// measurement on it meets what the second does not (a cold cache, WAL
// segments still to be created): courier and tuned River, the pair whose
// ratio is a target, take turns going first (odd rounds courier, even
// rounds River); River with its defaults, the slow one, comes last.
func (u *runner) postgres(ctx context.Context) {
	courierSys := "courier (PostgreSQL store)"
	pg, err := startPostgres(ctx, u.tmp)
	if err != nil {
		u.add("courier-w2-postgres", failed(courierSys, "w2", "burn-down", err))
		for _, m := range riverModes {
			u.add(m.id, failed(m.system, "w2", "burn-down", err))
		}
		return
	}
	defer pg.stop()
	courier := func() {
		if u.o.courier == "" {
			u.add("courier-w2-postgres", failed(courierSys, "w2", "burn-down", errNoCourier))
			return
		}
		u.measure(ctx, "courier-w2-postgres", func(ctx context.Context) Figure {
			dsn, err := pg.createDB(ctx, "courier")
			if err == nil {
				err = runCourierMigrate(ctx, u.o.courier, dsn)
			}
			if err != nil {
				return failed(courierSys, "w2", "burn-down", err)
			}
			return runCourier(ctx, u.o.courier, courierRun{system: courierSys, workload: "w2", mode: "burn-down",
				args: courierArgs("w2", u.p, u.p.Batch, u.p.Count, dsn)})
		})
	}
	river := func(m riverMode) {
		u.measure(ctx, m.id, func(ctx context.Context) Figure { return runRiverW2(ctx, pg, m, u.p) })
	}
	for _, step := range postgresOrder(u.round) {
		if step < 0 {
			courier()
		} else {
			river(riverModes[step])
		}
	}
}

// postgresOrder is the order of round's PostgreSQL measurements: -1 for
// courier, else an index of riverModes.
func postgresOrder(round int) []int {
	if round%2 == 0 {
		return []int{0, -1, 1}
	}
	return []int{-1, 0, 1}
}

// asynqMode runs W2 on a fresh Redis with the mode's fsync policy.
func (u *runner) asynqMode(ctx context.Context, m asynqMode) {
	id := "asynq-" + m.fsync + "-w2"
	rs, err := startRedis(ctx, u.tmp, m.fsync)
	if err != nil {
		u.add(id, failed(m.system, "w2", "burn-down", err))
		return
	}
	defer rs.stop()
	u.measure(ctx, id, func(ctx context.Context) Figure { return runAsynqW2(ctx, rs.addr, m, u.p) })
}

func withDurability(f Figure, d string) Figure {
	if f.Err == "" {
		f.Durability = d
	}
	return f
}
