#!/usr/bin/env node
console.log("ztunnel: pending");
