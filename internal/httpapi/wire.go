package httpapi

import (
	"errors"
	"net/http"

	courier "github.com/courierhq/courier"
	"github.com/courierhq/courier/internal/broker"
)

// The conversions from the API's wire types to the broker's, exported for
// the other ways in that take the same types (package courierpgx), so that
// a message or task means the same whichever way it arrives.

// Message checks the form of a wire message and converts it.
func Message(m *courier.NewMessage) (broker.Message, error) { return brokerMessage(m) }

// TaskRequest checks the form of a wire task and converts it.
func TaskRequest(req *courier.SubmitTask) (broker.TaskRequest, error) { return taskRequest(req) }

// ErrorOf is the *courier.Error the API would answer for err (its status,
// code and public message), so that callers outside HTTP see the SDK's
// errors; errors.Is(ErrorOf(err), courier.ErrInvalidArgument) and so on.
// An unexpected error keeps its own text, wrapped in an internal one.
func ErrorOf(err error) error {
	if err == nil {
		return nil
	}
	var ae *apiError
	if errors.As(err, &ae) {
		return &courier.Error{Status: ae.status, Code: ae.code, Message: ae.msg}
	}
	c, ok := classify(err)
	if !ok {
		return errors.Join(&courier.Error{Status: http.StatusInternalServerError, Code: courier.CodeInternal, Message: "internal error"}, err)
	}
	return &courier.Error{Status: c.status, Code: c.code, Message: c.message(emptyRequest, err)}
}

// emptyRequest stands for the request in messages that name its path
// values (a queue or task name), which a caller outside HTTP has not.
var emptyRequest, _ = http.NewRequest(http.MethodGet, "/", nil)
