package pb

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestRoundTrip checks that the generated messages encode and decode, and how small they are.
func TestRoundTrip(t *testing.T) {
	in := &CallOpRequest{Session: 7, Op: 3}
	b, err := proto.Marshal(in)
	require.NoError(t, err)
	assert.Len(t, b, 4, "two varint fields of one byte each, with their tags")
	var out CallOpRequest
	require.NoError(t, proto.Unmarshal(b, &out))
	assert.True(t, proto.Equal(in, &out))

	b, err = proto.Marshal(&Value{})
	require.NoError(t, err)
	assert.Empty(t, b, "a zero value encodes to nothing")
}
