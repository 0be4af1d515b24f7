// Package inbound reads the ballot mailbox: the IMAP reader and the LMTP
// door hand each message to the Processor, which parses it once with
// package inbound/message, classifies it, finds the answer in a reply and
// applies its effect through the ballots store, in one transaction with
// the mail it enqueues.
package inbound
