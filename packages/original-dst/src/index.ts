export { OriginalDstError, type OriginalDstErrorCode } from './errors.js';
export {
  type OriginalDestination,
  type OriginalDstSupport,
  originalDestination,
  originalDstSupport,
} from './original-destination.js';
