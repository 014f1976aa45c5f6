package httpapi

// A fast path for decoding a submit's request, as send_json.go's for a
// send: a batch submit carries up to 1,000 tasks, and encoding/json took
// a third of the submit handler's CPU. The same rules: the plain form is
// read in one pass, anything else is declined and left to encoding/json,
// and FuzzDecodeSubmitFast checks that the two never decide differently.

import courier "github.com/courierhq/courier"

// The fields of a task beyond its message's (send_json.go), for telling a
// repeated key.
const (
	fTasks = fMessages << (1 + iota)
	fNotify
	fReplyTo
	fResultTTL
)

// decodeFast decodes data into req, and reports whether it could; when it
// could not, req is unchanged.
func (req *submitRequest) decodeFast(data []byte) bool {
	return decodeWhole(data, req, func(r *jsonText, out *submitRequest, name []byte) (int, bool) {
		if string(name) == `"tasks"` {
			return fTasks, r.tasks(&out.Tasks)
		}
		return r.taskField(name, &out.SubmitTask)
	})
}

// tasks reads an array of task objects; [] makes an empty list, as
// encoding/json does.
func (r *jsonText) tasks(out *[]courier.SubmitTask) bool {
	return objects(r, out, r.taskField)
}

// taskField reads the value of the task field name (quoted) into t, and
// says which field it was; false for a key that is not a field.
func (r *jsonText) taskField(name []byte, t *courier.SubmitTask) (int, bool) {
	var ok bool
	switch string(name[1 : len(name)-1]) { // compared without a copy
	case "notify":
		var n courier.TaskNotify
		if ok = r.notify(&n); ok {
			t.Notify = &n
		}
		return fNotify, ok
	case "reply_to":
		t.ReplyTo, ok = r.str()
		return fReplyTo, ok
	case "result_ttl":
		t.ResultTTL, ok = r.str()
		return fResultTTL, ok
	}
	return r.field(name, &t.NewMessage)
}

// notify reads a task's notify object.
func (r *jsonText) notify(n *courier.TaskNotify) bool {
	return r.object(func(name []byte) (int, bool) {
		var ok bool
		switch string(name[1 : len(name)-1]) {
		case "url":
			n.URL, ok = r.str()
			return 1, ok
		case "secret":
			n.Secret, ok = r.str()
			return 2, ok
		}
		return 0, false
	})
}
