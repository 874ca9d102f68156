//go:build tools

// Package tools pins the etcd server command built from this module; nothing imports it.
package tools

import _ "go.etcd.io/etcd/server/v3"
