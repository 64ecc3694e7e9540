'use strict';
// Says it is ready the moment it runs, as a PM2 app does, and stays until the
// parent closes the channel. kin's spawn-to-ready benchmark times its start.
process.send('ready');
process.on('message', () => {});
