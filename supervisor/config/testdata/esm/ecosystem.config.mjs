import common from './common.cjs';

export default {
  apps: [{ name: 'esm', script: 'index.mjs', env: common.env }],
};
