package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// natsMode is one configuration of the NATS server's file store.
type natsMode struct {
	// name is a short label for progress lines; system the table's.
	name, system string
	// syncInterval is the jetstream block's sync_interval ("" for the
	// server's default), written into a real configuration file so that
	// the server parses it exactly as an operator's.
	syncInterval string
	// durability is what a PubAck or an ack reply promises in this mode.
	durability string
}

var natsModes = []natsMode{
	{
		name: "nats-always", system: "NATS JetStream, sync_interval: always", syncInterval: "always",
		durability: "every stored write synchronous (O_SYNC) before the PubAck",
	},
	{
		name: "nats-default", system: "NATS JetStream, default sync (every 2 min)",
		durability: "PubAck after the write to the OS; fsync every 2 minutes",
	},
}

// natsConfig is the server's configuration file: loopback, a random port,
// JetStream with file storage in storeDir.
func natsConfig(storeDir, syncInterval string) string {
	js := "store_dir: " + strconv.Quote(storeDir)
	if syncInterval != "" {
		js += "\n  sync_interval: " + syncInterval
	}
	return "host: 127.0.0.1\nport: -1\njetstream {\n  " + js + "\n}\n"
}

// startNATS runs nats-server in this process (the nats-server module's
// own server, as `nats-server -c FILE` would run it), on a fresh store in
// tmp. In-process, as courier bench runs its own server: server and
// clients share the same cores in both.
func startNATS(tmp string, m natsMode) (*server.Server, error) {
	dir := filepath.Join(tmp, m.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	conf := filepath.Join(dir, "nats.conf")
	if err := os.WriteFile(conf, []byte(natsConfig(filepath.Join(dir, "store"), m.syncInterval)), 0o600); err != nil {
		return nil, err
	}
	opts, err := server.ProcessConfigFile(conf)
	if err != nil {
		return nil, fmt.Errorf("nats config: %w", err)
	}
	if m.syncInterval == "always" && !opts.SyncAlways {
		return nil, errors.New("nats config: sync_interval: always did not set SyncAlways")
	}
	opts.NoLog, opts.NoSigs = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("nats server: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("nats server: not ready after 30s")
	}
	return s, nil
}

// stopNATS shuts the server down and removes its store.
func stopNATS(s *server.Server, tmp string, m natsMode) {
	s.Shutdown()
	s.WaitForShutdown()
	_ = os.RemoveAll(filepath.Join(tmp, m.name))
}
