#!/usr/bin/env node
console.log('ambient-control-plane: pending');
