package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a throwaway Redis on 127.0.0.1 with its append-only file
// in a temporary directory. fsync is "always" (every write fsynced before
// its reply: Redis shares one fsync among the clients of one event-loop
// turn) or "everysec" (the Redis default for AOF: up to a second of
// acknowledged writes can be lost). RDB snapshots are off, so the AOF is
// the only thing written.
type redisServer struct {
	dir  string
	addr string
	proc *child
}

// startRedis starts redis-server with appendfsync fsync ("always" or
// "everysec").
func startRedis(ctx context.Context, tmp, fsync string) (*redisServer, error) {
	bin, err := lookBin("redis-server", "/usr/bin", "/usr/local/bin")
	if err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &redisServer{dir: filepath.Join(tmp, "redis-"+fsync), addr: "127.0.0.1:" + strconv.Itoa(port)}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	s.proc, err = startChild("redis-server", bin, []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port),
		"--dir", s.dir, "--appendonly", "yes", "--appendfsync", fsync, "--save", "",
		"--daemonize", "no", "--protected-mode", "yes", "--loglevel", "warning"},
		s.dir, filepath.Join(s.dir, "log"), nil, syscall.SIGKILL)
	if err != nil {
		return nil, err
	}
	if err := s.ready(ctx); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// ready waits until the server answers PING.
func (s *redisServer) ready(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: s.addr})
	defer c.Close()
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-s.proc.exited:
			return fmt.Errorf("redis-server exited (%v):\n%s", s.proc.waitErr, s.proc.logTail())
		case <-ctx.Done():
			return fmt.Errorf("redis-server not ready (%v):\n%s", err, s.proc.logTail())
		case <-time.After(wait):
		}
	}
}

// stop ends the server (SIGTERM: it flushes and exits) and removes its
// directory.
func (s *redisServer) stop() {
	s.proc.stop(syscall.SIGTERM)
	_ = os.RemoveAll(s.dir)
}
