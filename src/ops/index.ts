// The array operations: views and layout, elementwise math with broadcasting,
// reductions, linear algebra, seeded random numbers. Each op checks shapes and
// dtypes here and leaves the kernel choice to src/kernels.

import './methods.js';
export * as random from './random.js';
export * from './layout.js';
export * from './promote.js';
export * from './elementwise.js';
export * from './reduce.js';
export * from './linalg.js';
