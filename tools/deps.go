//go:build tools

package tools

import (
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/kardianos/service"
	_ "go.etcd.io/bbolt"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/sync/errgroup"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "gopkg.in/natefinch/lumberjack.v2"
)
