// Package etcdcache is the rule by which pxekit's etcd-backed stores (the
// DHCP lease store and fleet's install state) cache the keys they read,
// write and watch: a key's cached state changes only to one seen at the
// same or a later revision, so a watch event or a read that arrives late
// never overwrites a newer write. The stores keep the map under their own
// locks, which also guard state of their own.
package etcdcache

import "go.etcd.io/etcd/api/v3/mvccpb"

// Entry is the cached state of one key.
type Entry[V any] struct {
	// Val is the key's decoded value (the zero value when absent or
	// unreadable).
	Val V
	// Rev is the key's mod revision, 0 when absent. It is kept for an
	// unreadable value too, so that a write over it compares on what is
	// there.
	Rev int64
	// Seen is the revision of the newest change this state reflects.
	Seen int64
}

// Put stores e for key in m unless m holds a state seen at a later
// revision, and reports whether it stored e. The caller holds the lock
// that guards m.
func Put[V any](m map[string]Entry[V], key string, e Entry[V]) bool {
	if old, ok := m[key]; ok && old.Seen > e.Seen {
		return false
	}
	m[key] = e
	return true
}

// FromRange is the state of key in the answer to a Get of it at revision
// rev: absent when kvs is empty, else its first value decoded. A value
// that does not decode gives an Entry with Rev set and Val zero, and
// decode's error.
func FromRange[V any](key string, kvs []*mvccpb.KeyValue, rev int64, decode func(key string, v []byte) (V, error)) (Entry[V], error) {
	e := Entry[V]{Seen: rev}
	if len(kvs) == 0 {
		return e, nil
	}
	e.Rev = kvs[0].ModRevision
	v, err := decode(key, kvs[0].Value)
	if err != nil {
		return e, err
	}
	e.Val = v
	return e, nil
}
