package storetest_test

import (
	"context"
	"errors"

	"github.com/courierhq/courier/internal/store"
)

// errNotModelled marks the task verbs the reference model does not model
// yet; no test of the suite calls them until it does.
var errNotModelled = errors.New("reference model: tasks are not modelled yet")

func (s *memStore) GetTask(context.Context, *store.GetTaskParams) (store.Task, error) {
	return store.Task{}, errNotModelled
}

func (s *memStore) CancelTask(context.Context, *store.CancelTaskParams) (store.Task, error) {
	return store.Task{}, errNotModelled
}

func (s *memStore) Progress(context.Context, *store.ProgressParams) (store.Task, error) {
	return store.Task{}, errNotModelled
}

func (s *memStore) WatchTask(string) <-chan struct{} { return make(chan struct{}) }

func (s *memStore) DueWebhooks(context.Context, *store.DueWebhooksParams) ([]store.Task, error) {
	return nil, errNotModelled
}

func (s *memStore) RecordWebhook(context.Context, *store.RecordWebhookParams) (store.Task, error) {
	return store.Task{}, errNotModelled
}
