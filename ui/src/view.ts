/** A page of the UI, mounted into the main area; destroyed when the route changes. */
export interface View {
  destroy(): void;
  /** A key pressed outside text inputs; true when the view used it. */
  key?(e: KeyboardEvent): boolean;
}
