// Shared settings, required by ecosystem.config.mjs: Load evaluates a
// config in place, so relative imports resolve.
module.exports = { env: { NODE_ENV: 'production' } };
