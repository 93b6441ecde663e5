package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRunRejectsUnknownDHCPMode(t *testing.T) {
	var buf bytes.Buffer
	assert.Equal(t, 2, run([]string{"-dhcp", "server"}, &buf))
	assert.Contains(t, buf.String(), `-dhcp "server"`)
}
