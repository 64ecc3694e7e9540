'use strict';
// An idle app: does nothing, forever. The process-manager benchmark runs four
// under each manager to weigh the managers' memory with apps to look after.
setInterval(() => {}, 1 << 30);
