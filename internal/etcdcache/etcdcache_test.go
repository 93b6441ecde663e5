package etcdcache

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

func TestPut(t *testing.T) {
	cases := []struct {
		name   string
		have   *Entry[string] // nil: key not cached
		put    Entry[string]
		stored bool
		want   Entry[string]
	}{
		{"new key", nil, Entry[string]{Val: "a", Rev: 5, Seen: 5}, true, Entry[string]{Val: "a", Rev: 5, Seen: 5}},
		{"newer change", &Entry[string]{Val: "a", Rev: 5, Seen: 5}, Entry[string]{Val: "b", Rev: 7, Seen: 7}, true, Entry[string]{Val: "b", Rev: 7, Seen: 7}},
		{"same revision", &Entry[string]{Val: "a", Rev: 5, Seen: 6}, Entry[string]{Val: "a2", Rev: 5, Seen: 6}, true, Entry[string]{Val: "a2", Rev: 5, Seen: 6}},
		{"late event", &Entry[string]{Val: "b", Rev: 7, Seen: 7}, Entry[string]{Val: "a", Rev: 5, Seen: 5}, false, Entry[string]{Val: "b", Rev: 7, Seen: 7}},
		{"late deletion", &Entry[string]{Val: "b", Rev: 7, Seen: 9}, Entry[string]{Seen: 8}, false, Entry[string]{Val: "b", Rev: 7, Seen: 9}},
		{"deletion", &Entry[string]{Val: "b", Rev: 7, Seen: 7}, Entry[string]{Seen: 8}, true, Entry[string]{Seen: 8}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := map[string]Entry[string]{}
			if c.have != nil {
				m["k"] = *c.have
			}
			assert.Equal(t, c.stored, Put(m, "k", c.put))
			assert.Equal(t, c.want, m["k"])
		})
	}
}

func TestFromRange(t *testing.T) {
	errBad := errors.New("bad")
	decode := func(key string, v []byte) (string, error) {
		if string(v) == "bad" {
			return "", errBad
		}
		return key + "=" + string(v), nil
	}
	e, err := FromRange("k", nil, 9, decode)
	assert.NoError(t, err)
	assert.Equal(t, Entry[string]{Seen: 9}, e, "absent")

	e, err = FromRange("k", []*mvccpb.KeyValue{{Key: []byte("k"), Value: []byte("v"), ModRevision: 4}}, 9, decode)
	assert.NoError(t, err)
	assert.Equal(t, Entry[string]{Val: "k=v", Rev: 4, Seen: 9}, e)

	e, err = FromRange("k", []*mvccpb.KeyValue{{Key: []byte("k"), Value: []byte("bad"), ModRevision: 4}}, 9, decode)
	assert.ErrorIs(t, err, errBad)
	assert.Equal(t, Entry[string]{Rev: 4, Seen: 9}, e, "unreadable: the revision is kept")
}
