package httpapi

// The JSON of a task object, written by hand, as a received message's is
// (message_json.go): a batch submit answers with up to 1,000 tasks, and
// encoding/json took a fifth of the submit handler's CPU. The output is
// byte for byte what encoding/json writes for courier.Task (with
// SetEscapeHTML(false)), which TestEncodeTaskMatchesEncodingJSON and
// FuzzEncodeTask check; what is rare on that path (a progress other than
// 0 or 1, a webhook) goes through encoding/json itself.

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"

	courier "github.com/courierhq/courier"
)

// appendTask appends t as JSON.
func appendTask(b []byte, t *courier.Task) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, t.ID)
	b = append(b, `,"queue":`...)
	b = appendString(b, t.Queue)
	b = append(b, `,"state":`...)
	b = appendString(b, string(t.State))
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(t.Attempt), 10)
	b = append(b, `,"progress":`...)
	b, err := appendProgress(b, t.Progress)
	if err != nil {
		return b, err
	}
	if t.ProgressMessage != "" {
		b = append(b, `,"progress_message":`...)
		b = appendString(b, t.ProgressMessage)
	}
	if len(t.Result) > 0 {
		b = append(b, `,"result":`...)
		buf := bytes.NewBuffer(b)
		if err := json.Compact(buf, t.Result); err != nil { // as encoding/json writes a RawMessage
			return b, err
		}
		b = buf.Bytes()
	}
	if t.Error != "" {
		b = append(b, `,"error":`...)
		b = appendString(b, t.Error)
	}
	b = append(b, `,"created_at":`...)
	if b, err = appendTime(b, t.CreatedAt); err != nil {
		return b, err
	}
	b = append(b, `,"updated_at":`...)
	if b, err = appendTime(b, t.UpdatedAt); err != nil {
		return b, err
	}
	if t.FinishedAt != nil {
		b = append(b, `,"finished_at":`...)
		if b, err = appendTime(b, *t.FinishedAt); err != nil {
			return b, err
		}
	}
	b = append(b, `,"cancel_requested":`...)
	b = strconv.AppendBool(b, t.CancelRequested)
	if t.ReplyTo != "" {
		b = append(b, `,"reply_to":`...)
		b = appendString(b, t.ReplyTo)
	}
	b = append(b, `,"result_ttl":`...)
	b = appendString(b, t.ResultTTL)
	if t.Webhook != nil {
		wh, err := marshal(t.Webhook)
		if err != nil {
			return b, err
		}
		b = append(b, `,"webhook":`...)
		b = append(b, wh...)
	}
	return append(b, '}'), nil
}

// appendProgress appends a task's progress: 0 and 1, by far the most
// common, directly; any other value as encoding/json formats it.
func appendProgress(b []byte, p float64) ([]byte, error) {
	switch {
	case p == 0 && !math.Signbit(p):
		return append(b, '0'), nil
	case p == 1:
		return append(b, '1'), nil
	}
	q, err := marshal(p)
	return append(b, q...), err
}

// appendTaskList appends ts as a courier.TaskList.
func appendTaskList(b []byte, ts []courier.Task) ([]byte, error) {
	b = append(b, `{"tasks":[`...)
	for i := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendTask(b, &ts[i]); err != nil {
			return b, err
		}
	}
	return append(b, "]}"...), nil
}
