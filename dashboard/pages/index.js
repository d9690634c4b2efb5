// Every page of the dashboard, in navigation order. Streams, topics, failed callbacks and the
// performance test plug in here as further modules when their APIs exist.

import overview from './overview.js';
import queues from './queues.js';
import queue from './queue.js';

export const pages = [overview, queues, queue];
