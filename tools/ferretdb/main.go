// Command ferretdb runs FerretDB v1.24 embedded, with the SQLite backend, for
// the test suite: MongoDB wire protocol on a loopback port, data in a directory.
//
// Usage: ferretdb -listen 127.0.0.1:0 -dir /tmp/x
// It prints "ready mongodb://HOST:PORT/" on stdout once it accepts connections.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "TCP address to listen on")
	dir := flag.String("dir", "", "data directory (required)")
	flag.Parse()
	if *dir == "" {
		log.Fatal("-dir is required")
	}
	if err := os.MkdirAll(*dir, 0o700); err != nil {
		log.Fatal(err)
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Handler:   "sqlite",
		SQLiteURL: "file:" + *dir + "/",
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()

	// The listener address is known once Run has bound it.
	for i := 0; i < 200; i++ {
		if uri := safeURI(f); uri != "" {
			fmt.Println("ready", uri)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := <-done; err != nil && ctx.Err() == nil {
		log.Fatal(err)
	}
}

func safeURI(f *ferretdb.FerretDB) (uri string) {
	defer func() {
		if recover() != nil {
			uri = ""
		}
	}()
	return f.MongoDBURI()
}
