// A PM2 ecosystem file with env profiles: kin start ecosystem.config.js
// --env production gives each app env merged with env_production.
module.exports = {
  apps: [
    {
      name: 'api',
      script: './idle.js',
      env: { MODE: 'development', SHARED: 'both' },
      env_production: { MODE: 'production' },
    },
    {
      name: 'worker',
      script: './idle.js',
      instances: 2,
      env: { MODE: 'development' },
      env_production: { MODE: 'production', EXTRA: 'prod-only' },
    },
  ],
};
