#!/usr/bin/env node
// The CLI: the same bundle the action runs.
import '../dist/index.js';
