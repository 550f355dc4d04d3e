// ctpipe as a library: the pieces the commands are made of.
export * from './event.js';
export * from './ndjson.js';
export { ConntrackSource, type ConntrackOptions } from './netlink/socket.js';
export { decodeConntrack, splitMessages, DecodeError } from './netlink/conntrack.js';
export { communityId } from './community-id.js';
