// A PM2 ecosystem file: two apps, with production settings in env_production.
const logs = './logs';

module.exports = {
  apps: [
    {
      name: 'api',
      script: './server.js',
      instances: 'max',
      exec_mode: 'cluster',
      node_args: '--max-old-space-size=256',
      max_memory_restart: '300M',
      wait_ready: true,
      listen_timeout: 8000,
      kill_timeout: 3000,
      env: {
        NODE_ENV: 'development',
        PORT: 3000,
      },
      env_production: {
        NODE_ENV: 'production',
        PORT: 8080,
      },
    },
    {
      name: 'worker',
      script: 'worker.js',
      args: '--queue default --verbose',
      autorestart: false,
      cron_restart: '0 3 * * *',
      exp_backoff_restart_delay: 100,
      restart_delay: 500,
      max_restarts: 10,
      min_uptime: '5s',
      watch: ['src'],
      ignore_watch: ['node_modules', '*.log'],
      out_file: `${logs}/worker.out.log`,
      error_file: `${logs}/worker.err.log`,
      merge_logs: true,
      env: { QUEUE: 'default' },
      env_production: { QUEUE: 'prod' },
    },
  ],
};
