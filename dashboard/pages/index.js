// Every page of the dashboard, in navigation order. A page is a module; adding one is a line here.

import overview from './overview.js';
import queues from './queues.js';
import queue from './queue.js';
import { streamsPage, streamPage } from './streams.js';
import { topicsPage, topicPage } from './topics.js';
import callbacks from './callbacks.js';
import sinks from './sinks.js';
import schedules from './schedules.js';
import performance from './performance.js';

export const pages = [overview, queues, queue, streamsPage, streamPage, topicsPage, topicPage, schedules, callbacks, sinks, performance];
